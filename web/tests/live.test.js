// Journey 5 without chat, in a real browser on SQLite and on PostgreSQL + Redis: a streamer
// makes a live on the studio's "Go live" page and copies the RTMP URL and stream key into the
// encoder (ffmpeg here, standing in for OBS); a visitor on the live's page watches it under
// hls.js in low-latency mode until the picture's time advances, counted as one viewer on the
// page; the encoder stops, and the page says the live ended and links the replay, without a
// reload. With a transcoded ladder, hls.js gets the multivariant playlist, plays a rung and
// switches to the other one while the picture's time keeps advancing.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, launchBrowser, signInForm, watchPage } from './support/browser.js';
import { PAGE_BUDGET_BYTES, startServer, testStacks } from './support/server.js';

function publish(rtmpUrl, key, seconds) {
  return spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=30:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-tune', 'zerolatency', '-c:a', 'aac',
    '-f', 'flv', `${rtmpUrl}/${key}`], { stdio: 'ignore' });
}

/** Ann makes a live titled `title` on the studio's "Go live" page: its RTMP URL, stream key and page. */
async function goLive(streamer, server, title) {
  await streamer.goto(server.url + '/studio/lives');
  await signInForm(streamer, 'ann');
  await streamer.waitForURL(server.url + '/studio/lives');
  await streamer.getByLabel('Title').fill(title);
  await streamer.getByRole('button', { name: /Create live/ }).click();
  const rtmpUrl = await streamer.getByLabel('Server (RTMP URL)').inputValue();
  const key = await streamer.getByLabel('Stream key').inputValue();
  const liveUrl = await streamer.getByRole('link', { name: title }).first().getAttribute('href');
  return { rtmpUrl, key, liveUrl };
}

const stacks = testStacks();

for (const [name, stack] of stacks) {
  describe(`live in a browser on ${name}`, { timeout: 300_000 }, () => {
    let server;
    let browser;
    let encoder;

    before(async () => {
      server = await startServer({
        stack,
        env: { TURTLEMEN_RTMP_LISTEN: '127.0.0.1:0', TURTLEMEN_LIVE_GRACE_SECS: '2' },
      });
      browser = await launchBrowser();
      const out = await server.cli(['admin', 'create-user', '--username', 'ann', '--email', 'ann@example.org', '--password-stdin'], `${PASSWORD}\n`);
      assert.equal(out.code, 0, out.stderr);
    });

    after(async () => {
      encoder?.kill('SIGKILL');
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0, server.logs());
    });

    test('go live from the studio, watch a few seconds behind under hls.js, then the live ends', async () => {
      const streamer = await (await browser.newContext()).newPage();
      const { rtmpUrl, key, liveUrl } = await goLive(streamer, server, 'Turtles <b>live</b>');
      assert.match(rtmpUrl, /^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
      assert.equal(key.length, 43);
      assert.match(liveUrl, /^\/lives\/[0-9a-f-]{36}$/);

      // A visitor opens the page before the stream starts; it follows the state by itself.
      const viewer = await (await browser.newContext()).newPage();
      const record = watchPage(viewer);
      const page = await viewer.goto(server.url + liveUrl);
      assert.ok((await page.body()).length < PAGE_BUDGET_BYTES);
      await viewer.getByText('Waiting for the streamer').waitFor();

      encoder = publish(rtmpUrl, key, 30);
      await viewer.getByText('Live now').waitFor({ timeout: 30_000 });
      await viewer.waitForFunction(() => document.getElementById('video').currentTime > 3, null, { timeout: 60_000 });
      const lowLatency = await viewer.evaluate(() => window.turtlemenLive?.config.lowLatencyMode);
      assert.equal(lowLatency, true);
      // Parts were fetched: the player is on the low-latency path.
      assert.ok(record.requests.some((u) => /\/part-\d+\.\d+\.m4s$/.test(new URL(u).pathname)), 'parts requested');
      const behind = await viewer.evaluate(() => window.turtlemenLive.latency);
      assert.ok(behind > 0 && behind < 8, `a few seconds behind: ${behind}`);
      // The page shows the viewers the packager counts: this player.
      await viewer.locator('#live-viewers', { hasText: '1 watching' }).waitFor({ timeout: 15_000 });

      // The encoder stops; after the grace period the page says so and links the replay.
      encoder.kill('SIGINT');
      await viewer.getByText('This live has ended.').waitFor({ timeout: 60_000 });
      await viewer.getByRole('link', { name: 'Watch the replay' }).waitFor({ timeout: 60_000 });
      for (const u of record.requests) assert.equal(new URL(u).origin, server.url, `request to another host: ${u}`);
    });
  });
}

for (const [name, stack] of stacks) {
  describe(`a transcoded live in a browser on ${name}`, { timeout: 300_000 }, () => {
    let server;
    let browser;
    let encoder;

    before(async () => {
      server = await startServer({
        stack,
        // The 640×360 source gets two rungs; 720p is above it and left out.
        env: { TURTLEMEN_RTMP_LISTEN: '127.0.0.1:0', TURTLEMEN_LIVE_LADDER: '720:2000,360:600,240:300' },
      });
      browser = await launchBrowser();
      const out = await server.cli(['admin', 'create-user', '--username', 'ann', '--email', 'ann@example.org', '--password-stdin'], `${PASSWORD}\n`);
      assert.equal(out.code, 0, out.stderr);
    });

    after(async () => {
      encoder?.kill('SIGKILL');
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0, server.logs());
    });

    test('hls.js plays the ladder and switches rungs', async () => {
      const streamer = await (await browser.newContext()).newPage();
      const { rtmpUrl, key, liveUrl } = await goLive(streamer, server, 'Turtles in two sizes');

      const viewer = await (await browser.newContext()).newPage();
      const record = watchPage(viewer);
      await viewer.goto(server.url + liveUrl);
      encoder = publish(rtmpUrl, key, 40);
      await viewer.getByText('Live now').waitFor({ timeout: 30_000 });
      await viewer.waitForFunction(() => document.getElementById('video').currentTime > 2, null, { timeout: 60_000 });
      const levels = await viewer.evaluate(() => window.turtlemenLive.levels.map((l) => l.height));
      assert.deepEqual([...levels].sort((a, b) => a - b), [240, 360]);
      // Switch to the rung not playing; its parts are fetched and the picture goes on.
      const from = await viewer.evaluate(() => window.turtlemenLive.currentLevel);
      const to = from === 1 ? 0 : 1;
      const rung = `${levels[to]}p`;
      await viewer.evaluate((level) => { window.turtlemenLive.currentLevel = level; }, to);
      await viewer.waitForFunction((level) => window.turtlemenLive.currentLevel === level, to, { timeout: 30_000 });
      const at = await viewer.evaluate(() => document.getElementById('video').currentTime);
      await viewer.waitForFunction((t) => document.getElementById('video').currentTime > t + 2, at, { timeout: 30_000 });
      assert.ok(record.requests.some((u) => new URL(u).pathname.includes(`/${rung}/part-`)), `parts of ${rung} requested`);
      assert.ok(await viewer.evaluate(() => window.turtlemenLive.config.lowLatencyMode));
      for (const u of record.requests) assert.equal(new URL(u).origin, server.url, `request to another host: ${u}`);
      encoder.kill('SIGINT');
    });
  });
}
