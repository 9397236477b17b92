// The live bench (run by benches/live.sh, which builds the release binary and the load tool).
//
// 1. Latency, glass to glass. ffmpeg publishes a 1280×720 test picture whose top strip carries
//    the wall clock as 24 black/white boxes (10 ms steps since a base the script picks; every
//    frame's timestamp is set to the wall clock at capture), encoded by x264 (zerolatency,
//    1 s GOP) as OBS would. Headless chromium opens the live's page (hls.js in low-latency mode)
//    and, on every frame presented (requestVideoFrameCallback), reads the boxes back from the
//    picture: latency = the time the frame is shown − the time it was captured. hls.latency and
//    the buffer ahead are sampled too. Baseline in the same page and run: hls.js in its
//    ordinary mode on the plain playlist of whole segments from the same packager.
// 2. Viewers: a pre-encoded 640×360 1 Mb/s stream is published (copied, so the encoder costs
//    nothing), and the load tool (crates/live/examples/viewers.rs) plays it with N players —
//    blocking reloads on _HLS_msn/_HLS_part and every part fetched, as hls.js does — at rising
//    N until one falls behind (a part arriving after a player holding PART-HOLD-BACK behind the
//    live edge needs it, a playlist answer more than one part past the part it asked for, or a
//    failed request), then the gap is halved twice; the largest N with none behind is the result.
//    Parts fetched slower than they last are counted beside it (slow_parts), as a stricter sign.
// 3. CPU and memory per passthrough stream: the server (with its packagers, the ffmpeg children)
//    idle, then with STREAMS copied streams; the difference per stream.
// 4. The transcoded ladder (LADDER) on a second server: 1.'s latency (the clock read at whatever
//    rung hls.js plays), and 3.'s CPU and memory per stream with TSTREAMS 720p sources.
// Each part runs RUNS times; medians are printed. Environment: RUNS (3), STREAMS (4), TSTREAMS
// (1), LADDER ("720:2500,360:800"), STEPS (players per step, "250,500,1000,2000,3000,4000"),
// STEP_SECS (20), ONLY (the parts to run, "latency,viewers,streams,ladder"), VIEWERS_BIN,
// TURTLEMEN_BIN.

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { launchBrowser, signInForm, PASSWORD } from '../web/tests/support/browser.js';
import { startServer } from '../web/tests/support/server.js';

const RUNS = Number(process.env.RUNS || 3);
const STREAMS = Number(process.env.STREAMS || 4);
const STEPS = (process.env.STEPS || '250,500,1000,2000,3000,4000').split(',').map(Number);
const STEP_SECS = Number(process.env.STEP_SECS || 20);
const VIEWERS_BIN = process.env.VIEWERS_BIN;
const ONLY = (process.env.ONLY || 'latency,viewers,streams,ladder').split(',');
const LADDER = process.env.LADDER || '720:2500,360:800';
const TSTREAMS = Number(process.env.TSTREAMS || 1);
const BITS = 24;

const median = (xs) => {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

/** Runs a command; its stdout (with its stderr after it when `withErr`). */
function run(cmd, args, withErr = false) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(withErr ? out + err : out) : reject(new Error(`${cmd} failed (${code}): ${err}`))));
  });
}

/** The filter that sets each frame's time to the wall clock and draws it as boxes. */
function clockFilter(baseUs) {
  const parts = [`setpts='(RTCTIME-${baseUs})/(TB*1000000)'`, 'drawbox=x=0:y=0:w=1280:h=60:color=black:t=fill'];
  for (let i = 0; i < BITS; i++) {
    parts.push(`drawbox=x=${10 + i * 50}:y=10:w=40:h=40:color=white:t=fill:enable='mod(floor(t*100/${2 ** i}),2)'`);
  }
  return parts.join(',');
}

function publishClock(target, seconds, baseUs) {
  return spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error',
    '-re', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
    '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(seconds), '-vf', clockFilter(baseUs), '-af', `asetpts='(RTCTIME-${baseUs})/(TB*1000000)'`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', '30', '-pix_fmt', 'yuv420p',
    '-b:v', '2500k', '-maxrate', '2500k', '-bufsize', '1250k', '-c:a', 'aac', '-b:a', '128k',
    '-f', 'flv', target], { stdio: 'ignore' });
}

function publishClip(target, clip) {
  return spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip,
    '-c', 'copy', '-f', 'flv', target], { stdio: 'ignore' });
}

/** CPU seconds (user + system) of `pid` and its children, and their resident memory in MB. */
async function usage(pid) {
  const tick = 100;
  const stat = async (p) => {
    const text = await readFile(`/proc/${p}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / tick };
  };
  const rss = async (p) => {
    const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${p}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  };
  let cpu = (await stat(pid)).cpu;
  let mem = await rss(pid);
  const own = mem;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === pid) continue;
    try {
      const s = await stat(name);
      if (s.ppid === pid) {
        cpu += s.cpu;
        mem += await rss(name);
      }
    } catch { /* gone */ }
  }
  return { cpu, mem, own };
}

/** A server, a signed-in streamer and the helpers to make, await and end lives on it. */
async function open(browser, env) {
  const server = await startServer({
    env: {
      TURTLEMEN_RTMP_LISTEN: '127.0.0.1:0',
      TURTLEMEN_LIVE_GRACE_SECS: '1',
      TURTLEMEN_LOG_LEVEL: 'error',
      // One streamer publishes STREAMS lives at once here.
      TURTLEMEN_LIVE_MAX_PER_USER: String(Math.max(2, STREAMS, TSTREAMS)),
      ...env,
    },
  });
  const made = await server.cli(['admin', 'create-user', '--username', 'ann', '--email', 'ann@example.org', '--password-stdin'], `${PASSWORD}\n`);
  if (made.code !== 0) throw new Error(made.stderr);
  const context = await browser.newContext();
  const streamer = await context.newPage();
  await streamer.goto(server.url + '/studio/lives');
  await signInForm(streamer, 'ann');
  await streamer.waitForURL(server.url + '/studio/lives');
  const newLive = async (title) => {
    const res = await context.request.post(server.url + '/api/v1/lives', { data: { title, replays: false } });
    if (res.status() !== 201) throw new Error(`new live: ${res.status()} ${await res.text()}`);
    return res.json();
  };
  const liveNow = async (id) => {
    for (let i = 0; i < 150; i++) {
      const v = await (await context.request.get(`${server.url}/api/v1/lives/${id}`)).json();
      if (v.state === 'live' && v.hls_url) return v;
      await delay(200);
    }
    throw new Error(`live ${id} never went live`);
  };
  const endLive = (id) => context.request.post(`${server.url}/api/v1/lives/${id}/end`);
  return { server, context, newLive, liveNow, endLive };
}

/** Glass-to-glass latency, RUNS runs on `at` (see 1. above); one row per run. */
async function latencyRuns(at, browser, encoders, label) {
  const rows = [];
  for (let r = 1; r <= RUNS; r++) {
    const live = await at.newLive(`Clock ${label} ${r}`);
    const baseMs = Date.now();
    const encoder = publishClock(`${live.rtmp_url}/${live.stream_key}`, 90, baseMs * 1000);
    encoders.add(encoder);
    await at.liveNow(live.id);
    const viewer = await (await browser.newContext()).newPage();
    await viewer.goto(at.server.url + live.watch_url);
    await viewer.waitForFunction(() => document.getElementById('video')?.currentTime > 3, null, { timeout: 60_000 });
    // The baseline: hls.js in its ordinary mode on the plain playlist, in the same page.
    await viewer.evaluate(() => {
      const plain = document.createElement('video');
      plain.id = 'plain';
      plain.muted = true;
      plain.width = 1280;
      document.body.append(plain);
      const hls = new window.Hls({ lowLatencyMode: false, enableWorker: false });
      hls.loadSource(window.turtlemenLive.url.replace('live.m3u8', 'index.m3u8'));
      hls.attachMedia(plain);
      window.plainHls = hls;
      plain.play().catch(() => {});
    });
    await viewer.waitForFunction(() => document.getElementById('plain').currentTime > 3, null, { timeout: 60_000 });
    await delay(5_000);
    const measured = await viewer.evaluate(async ({ baseMs, bits }) => {
      const sample = (video, hls, ms) => new Promise((resolve) => {
        const canvas = document.createElement('canvas');
        canvas.width = 1280;
        canvas.height = 60;
        const ctx = canvas.getContext('2d', { willReadFrequently: true });
        const out = { g2g: [], latency: [], buffer: [], heights: new Set(), frames: 0 };
        const end = performance.now() + ms;
        const step = (_now, meta) => {
          // The clock strip is the top 60 of 720 lines, whatever the rung's size.
          ctx.drawImage(video, 0, 0, video.videoWidth, video.videoHeight / 12, 0, 0, 1280, 60);
          const px = ctx.getImageData(0, 0, 1280, 60).data;
          let captured = 0;
          for (let i = 0; i < bits; i++) if (px[(30 * 1280 + 30 + i * 50) * 4] > 128) captured += 2 ** i;
          const shown = performance.timeOrigin + meta.expectedDisplayTime - baseMs;
          out.g2g.push((shown - captured * 10) / 1000);
          out.latency.push(hls.latency);
          out.heights.add(video.videoHeight);
          const b = video.buffered;
          if (b.length) out.buffer.push(b.end(b.length - 1) - video.currentTime);
          out.frames++;
          if (performance.now() < end) video.requestVideoFrameCallback(step);
          else resolve({ ...out, heights: [...out.heights] });
        };
        video.requestVideoFrameCallback(step);
      });
      const ll = document.getElementById('video');
      const plain = document.getElementById('plain');
      const [a, b] = await Promise.all([sample(ll, window.turtlemenLive, 15_000), sample(plain, window.plainHls, 15_000)]);
      return { ll: a, plain: b };
    }, { baseMs, bits: BITS });
    const row = {
      g2g: median(measured.ll.g2g), hls: median(measured.ll.latency), buffer: median(measured.ll.buffer),
      plainG2g: median(measured.plain.g2g), plainHls: median(measured.plain.latency), frames: measured.ll.frames,
    };
    rows.push(row);
    console.log(`latency ${label} run ${r}: LL-HLS glass-to-glass ${fmt(row.g2g)} s (hls.latency ${fmt(row.hls)} s, buffer ${fmt(row.buffer)} s, ${row.frames} frames read, picture ${measured.ll.heights.join('/')} lines); plain HLS baseline ${fmt(row.plainG2g)} s (hls.latency ${fmt(row.plainHls)} s)`);
    await viewer.context().close();
    encoder.kill('SIGKILL');
    encoders.delete(encoder);
    await at.endLive(live.id);
  }
  return rows;
}

/** CPU and memory per stream: `n` streams of `clip` (copied by the encoder) on `at`, against
 * the idle server. */
async function streamRuns(at, encoders, clip, n, label) {
  await delay(3_000);
  const rows = [];
  for (let r = 1; r <= RUNS; r++) {
    const idle0 = await usage(at.server.pid);
    await delay(10_000);
    const idle1 = await usage(at.server.pid);
    const lives = [];
    for (let s = 0; s < n; s++) lives.push(await at.newLive(`Load ${label} ${r}.${s}`));
    const started = lives.map((l) => publishClip(`${l.rtmp_url}/${l.stream_key}`, clip));
    for (const e of started) encoders.add(e);
    for (const l of lives) await at.liveNow(l.id);
    await delay(5_000);
    const busy0 = await usage(at.server.pid);
    await delay(20_000);
    const busy1 = await usage(at.server.pid);
    const idleCpu = (idle1.cpu - idle0.cpu) / 10;
    const busyCpu = (busy1.cpu - busy0.cpu) / 20;
    const row = {
      cpu: (100 * (busyCpu - idleCpu)) / n,
      mem: (busy1.mem - idle1.mem) / n,
      own: (busy1.own - idle1.own) / n,
    };
    rows.push(row);
    console.log(`streams ${label} run ${r}: idle ${fmt(100 * idleCpu, 1)}% CPU, ${fmt(idle1.mem, 0)} MB; ${n} streams ${fmt(100 * busyCpu, 1)}% CPU, ${fmt(busy1.mem, 0)} MB → per stream ${fmt(row.cpu, 1)}% of a core, ${fmt(row.mem, 1)} MB (of which the server process ${fmt(row.own, 1)} MB, the rest its ffmpeg)`);
    for (const e of started) {
      e.kill('SIGKILL');
      encoders.delete(e);
    }
    for (const l of lives) await at.endLive(l.id);
    await delay(3_000);
  }
  return rows;
}

async function main() {
  const browser = await launchBrowser();
  const work = await mkdtemp(path.join(os.tmpdir(), 'turtlemen-live-bench-'));
  const encoders = new Set();
  const servers = [];
  try {
    const at = await open(browser, {});
    servers.push(at.server);

    // 1. Latency.
    const latency = ONLY.includes('latency') ? await latencyRuns(at, browser, encoders, 'passthrough') : [];

    // 2. Viewers.
    const clip = path.join(work, 'clip.mp4');
    await run('ffmpeg', ['-hide_banner', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30:duration=20',
      '-f', 'lavfi', '-i', 'sine=frequency=440:duration=20', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '30',
      '-b:v', '1000k', '-maxrate', '1000k', '-bufsize', '1000k', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '96k', '-shortest', clip]);
    const served = [];
    if (VIEWERS_BIN && ONLY.includes('viewers')) {
      for (let r = 1; r <= RUNS; r++) {
        const live = await at.newLive(`Viewers ${r}`);
        const encoder = publishClip(`${live.rtmp_url}/${live.stream_key}`, clip);
        encoders.add(encoder);
        const v = await at.liveNow(live.id);
        await delay(4_000);
        const step = async (n) => {
          const line = (await run(VIEWERS_BIN, [at.server.url + v.hls_url, String(n), String(STEP_SECS)], true)).trim();
          const counted = (await (await at.context.request.get(`${at.server.url}/api/v1/lives/${live.id}`)).json()).viewers;
          console.log(`viewers run ${r}: ${line} counted_by_server=${counted}`);
          return Number(/behind=(\d+)/.exec(line)[1]) + Number(/failed=(\d+)/.exec(line)[1]) === 0;
        };
        // Ramp up until a player falls behind, then halve the gap twice.
        let best = 0;
        let worst = null;
        for (const n of STEPS) {
          if (!(await step(n))) {
            worst = n;
            break;
          }
          best = n;
        }
        for (let i = 0; i < 2 && worst !== null && worst - best > 50; i++) {
          const mid = Math.round((best + worst) / 2 / 25) * 25;
          if (await step(mid)) best = mid;
          else worst = mid;
        }
        served.push(best);
        console.log(`viewers run ${r}: ${best} players served with none behind${worst === null ? ' (the largest step tried)' : `; ${worst} had one behind`}`);
        encoder.kill('SIGKILL');
        encoders.delete(encoder);
        await at.endLive(live.id);
      }
    }

    // 3. CPU and memory per passthrough stream.
    const per = ONLY.includes('streams') ? await streamRuns(at, encoders, clip, STREAMS, 'passthrough') : [];
    await at.server.stop().catch(() => {});
    servers.pop();

    // 4. The transcoded ladder: latency and CPU per stream, on a server transcoding to LADDER.
    let tLatency = [];
    let tPer = [];
    if (ONLY.includes('ladder')) {
      const lt = await open(browser, { TURTLEMEN_LIVE_LADDER: LADDER });
      servers.push(lt.server);
      tLatency = await latencyRuns(lt, browser, encoders, `ladder ${LADDER}`);
      const clip720 = path.join(work, 'clip720.mp4');
      await run('ffmpeg', ['-hide_banner', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30:duration=20',
        '-f', 'lavfi', '-i', 'sine=frequency=440:duration=20', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60',
        '-b:v', '2500k', '-maxrate', '2500k', '-bufsize', '2500k', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '96k', '-shortest', clip720]);
      tPer = await streamRuns(lt, encoders, clip720, TSTREAMS, `ladder ${LADDER}`);
    }

    console.log(`\nmedians over ${RUNS} runs (one shared 2-core machine, noisy: the encoders, chromium and the load tool run beside the server):`);
    const g = median(latency.map((x) => x.g2g));
    if (latency.length) {
      console.log(`  glass-to-glass, LL-HLS passthrough: ${fmt(g)} s (target <= 3 s, stretch <= 2 s); hls.latency ${fmt(median(latency.map((x) => x.hls)))} s; buffer ${fmt(median(latency.map((x) => x.buffer)))} s`);
      console.log(`  glass-to-glass, plain HLS baseline (same packager, same page): ${fmt(median(latency.map((x) => x.plainG2g)))} s`);
      console.log(`  vs Owncast's lowest ~5 s: ${fmt(g / 5)}x; vs PeerTube's small-latency 11-15 s: ${fmt(g / 11)}-${fmt(g / 15)}x`);
    }
    if (tLatency.length) {
      const t = median(tLatency.map((x) => x.g2g));
      console.log(`  glass-to-glass, LL-HLS transcoded (${LADDER}): ${fmt(t)} s; hls.latency ${fmt(median(tLatency.map((x) => x.hls)))} s; plain HLS baseline ${fmt(median(tLatency.map((x) => x.plainG2g)))} s; ${fmt(t / g)}x passthrough; vs Owncast's ~5 s: ${fmt(t / 5)}x`);
    }
    if (served.length) console.log(`  viewers served with none behind: ${median(served)} (PeerTube broke at ~700-800: ${fmt(median(served) / 750)}x)`);
    const pc = median(per.map((x) => x.cpu));
    if (per.length) console.log(`  per passthrough stream: ${fmt(pc, 1)}% of a core, ${fmt(median(per.map((x) => x.mem)), 1)} MB (server process ${fmt(median(per.map((x) => x.own)), 1)} MB)`);
    if (tPer.length) {
      const tc = median(tPer.map((x) => x.cpu));
      console.log(`  per transcoded stream (720p 2.5 Mb/s source, ${LADDER}; passthrough's was 360p 1 Mb/s): ${fmt(tc, 1)}% of a core (${fmt(tc / pc, 0)}x passthrough), ${fmt(median(tPer.map((x) => x.mem)), 1)} MB`);
    }
  } finally {
    for (const e of encoders) e.kill('SIGKILL');
    await browser.close();
    for (const s of servers) await s.stop().catch(() => {});
    await rm(work, { recursive: true, force: true });
  }
}

await main();
