// The video journey in a real browser, on SQLite and on PostgreSQL + Redis: sign in, upload a
// clip made by ffmpeg through tus-js-client while filling in its details, follow processing,
// watch it under hls.js (time advances) and switch quality; pause and resume an upload; the
// watch page without JavaScript; the creator's list following processing, then deleting.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, settled, watchPage } from './support/browser.js';
import { PAGE_BUDGET_BYTES, startServer, testStacks } from './support/server.js';
import { until } from './support/wait.js';

const PASSWORD = 'correct horse battery staple';
const PROCESSING_DEADLINE_MS = 180_000;

/** Waits for the upload to finish; a timeout names what the page said instead. */
async function uploadFinished(page, timeout = 90_000) {
  const label = page.locator('#upload-progress-label');
  try {
    await label.filter({ hasText: 'Uploaded' }).waitFor({ timeout });
  } catch (e) {
    throw new Error(`the upload did not finish; the page says: ${await label.textContent()}`, { cause: e });
  }
}

/** Slows the page's uploads to `bytesPerSecond`, so there is time to pause or reload. */
async function throttleUploads(context, page, bytesPerSecond) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
  });
  // Small chunks, so each one commits while the connection crawls.
  await page.evaluate(() => (document.getElementById('drop-zone').dataset.chunkSize = String(256 * 1024)));
}

/** Makes the test clips with ffmpeg: a 6 s one, and a longer noisy one that stays big. */
async function makeClips(dir) {
  const run = promisify(execFile);
  const clip = path.join(dir, 'clip.mp4');
  await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine',
    '-t', '6', '-c:v', 'libx264', '-c:a', 'aac', clip]);
  // Noise does not compress: about 3 MB, slow enough to pause under a throttled connection.
  const big = path.join(dir, 'noise.mp4');
  await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'nullsrc=size=320x240:rate=25,geq=random(1)*255:128:128',
    '-t', '4', '-c:v', 'libx264', '-b:v', '6M', '-pix_fmt', 'yuv420p', big]);
  return { clip, big };
}

async function signIn(page, server, asked) {
  await page.goto(server.url + asked);
  await page.getByLabel('Username or email').fill('ann');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(server.url + asked);
}

const stacks = testStacks();

for (const [name, stack] of stacks) {
  describe(`videos in a browser on ${name}`, { timeout: 600_000 }, () => {
    let server;
    let browser;
    let dir;
    let clips;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'turtlemen-clips-'));
      clips = await makeClips(dir);
      server = await startServer({ stack });
      browser = await launchBrowser();
      const out = await server.cli(['admin', 'create-user', '--username', 'ann', '--email', 'ann@example.org', '--password-stdin'], `${PASSWORD}\n`);
      assert.equal(out.code, 0, out.stderr);
    });

    after(async () => {
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0, server.logs());
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('upload while filling in the details, follow processing, watch under hls.js and switch quality', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const record = watchPage(page);
      try {
        await signIn(page, server, '/upload');
        await page.locator('#file').setInputFiles(clips.clip);
        // The title starts as the file's name, and the details are saved while the bytes go up.
        await page.waitForFunction(() => document.getElementById('title').value === 'clip');
        await page.getByLabel('Title').fill('Turtles <at> sea');
        await page.getByLabel('Tags').fill('turtles, sea');
        await page.getByRole('radio', { name: /Public/ }).check();
        await page.getByText('Details saved.').waitFor({ timeout: 30_000 });
        assert.match(await page.locator('#upload-progress-label').textContent(), /Uploaded|of/);

        // Processing is followed until there is something to watch.
        const watch = page.getByRole('link', { name: 'Watch' });
        await watch.waitFor({ timeout: PROCESSING_DEADLINE_MS });
        const mine = await (await page.request.get(`${server.url}/api/v1/me/videos`)).json();
        assert.equal(mine.videos.length, 1);
        const video = mine.videos[0];
        assert.equal(video.title, 'Turtles <at> sea');
        assert.deepEqual(video.tags, ['turtles', 'sea']);
        assert.equal(video.privacy, 'public');

        await watch.click();
        await page.waitForURL(`${server.url}/videos/${video.id}`);
        assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Turtles <at> sea');
        await page.getByRole('button', { name: 'Play' }).click();
        const started = await page.evaluate(() => document.getElementById('video').currentTime);
        await page.waitForFunction((t) => document.getElementById('video').currentTime > t + 1, started, { timeout: 30_000 });
        assert.ok(record.requests.some((u) => u.includes('/static/hls.min.')), 'hls.js drives the player');
        assert.ok(record.requests.some((u) => /\/hls\/master\.m3u8$/.test(u)), 'the master playlist was loaded');

        // Quality: every rendition is offered; choosing another one switches to it.
        const options = await page.locator('#quality option').allTextContents();
        assert.deepEqual(options, ['Auto', '360p', '240p', '144p']);
        await page.waitForFunction(() => document.getElementById('player').dataset.levelHeight);
        const current = await page.evaluate(() => document.getElementById('player').dataset.levelHeight);
        const target = current === '144' ? '360p' : '144p';
        const before = record.requests.length;
        await page.getByLabel('Quality').selectOption({ label: target });
        await page.waitForFunction((h) => document.getElementById('player').dataset.levelHeight === h, target.replace('p', ''));
        await until(() => record.requests.slice(before).some((u) => u.includes(`/hls/${target}/`)), {
          what: `a request for the ${target} rendition`,
        });
        const t = await page.evaluate(() => document.getElementById('video').currentTime);
        await page.waitForFunction((x) => document.getElementById('video').currentTime > x + 0.5, t, { timeout: 30_000 });

        // Seek thumbnails: hovering the progress bar shows the storyboard's tile for that time.
        const seek = page.getByRole('slider', { name: 'Seek' });
        const box = await seek.boundingBox();
        await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
        await page.locator('.seek-preview').waitFor();
        await page.waitForFunction(() => /storyboard|sprite|\.jpg/.test(document.querySelector('.seek-preview-image').style.backgroundImage));
        assert.match(await page.locator('.seek-preview-time').textContent(), /^0:0\d$/);

        // The view beacon went out once playback passed 3 s.
        await until(() => record.requests.some((u) => u.endsWith(`/api/v1/videos/${video.id}/views`)), { what: 'the view beacon' });

        // Keyboard: k pauses, > speeds up.
        await page.locator('body').press('k');
        await page.waitForFunction(() => document.getElementById('video').paused);
        await page.locator('body').press('>');
        assert.equal(await page.evaluate(() => document.getElementById('video').playbackRate), 1.25);
        assert.deepEqual(record.errors.filter((e) => !e.includes('net::ERR_ABORTED')), []);
      } finally {
        await context.close();
      }
    });

    test('an upload can be paused and resumed', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      try {
        await signIn(page, server, '/upload');
        // A slow connection, so there is time to pause: about 3 MB at 400 KB/s.
        await throttleUploads(context, page, 400 * 1024);
        await page.locator('#file').setInputFiles(clips.big);
        await page.waitForFunction(() => Number(document.getElementById('upload-progress').value) > 5);
        await page.getByRole('button', { name: 'Pause' }).click();
        const paused = Number(await page.locator('#upload-progress').getAttribute('value'));
        assert.ok(paused < 100, `paused before the end (${paused}%)`);
        await page.getByRole('button', { name: 'Resume' }).waitFor();
        // While paused, nothing moves.
        const held = await page.locator('#upload-progress').evaluate((p) => p.value);
        await page.waitForTimeout(1000);
        assert.equal(await page.locator('#upload-progress').evaluate((p) => p.value), held, 'paused means paused');
        await page.getByRole('button', { name: 'Resume' }).click();
        await uploadFinished(page);
        // The server has every byte, once.
        const { size } = await stat(clips.big);
        const mine = await (await page.request.get(`${server.url}/api/v1/me/videos`)).json();
        const uploaded = mine.videos.find((v) => v.original?.filename === 'noise.mp4');
        assert.ok(uploaded, JSON.stringify(mine));
        assert.equal(uploaded.original.bytes, size);
        assert.notEqual(uploaded.state, 'uploading');
      } finally {
        await context.close();
      }
    });

    test('an upload resumes after a page reload, without creating another video', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      try {
        await signIn(page, server, '/upload');
        const count = async () => (await (await page.request.get(`${server.url}/api/v1/me/videos`)).json()).videos.length;
        const before = await count();
        await throttleUploads(context, page, 400 * 1024);
        await page.locator('#file').setInputFiles(clips.big);
        await page.waitForFunction(() => Number(document.getElementById('upload-progress').value) > 20);
        await page.reload();
        // The page says which file to choose again; choosing it continues the same upload.
        await page.locator('#resume-hint').filter({ hasText: 'noise.mp4' }).waitFor();
        const creations = [];
        page.on('request', (r) => {
          if (r.method() === 'POST' && r.url().endsWith('/api/v1/uploads')) creations.push(r.url());
        });
        await throttleUploads(context, page, 4 * 1024 * 1024);
        await page.locator('#file').setInputFiles(clips.big);
        await uploadFinished(page);
        assert.deepEqual(creations, [], 'no new upload was created');
        assert.equal(await count(), before + 1, 'one video for the file');
        const { size } = await stat(clips.big);
        const mine = await (await page.request.get(`${server.url}/api/v1/me/videos`)).json();
        assert.equal(mine.videos[0].original.bytes, size);
        assert.notEqual(mine.videos[0].state, 'uploading');
      } finally {
        await context.close();
      }
    });

    test('the upload and watch pages stay small before the player', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      try {
        await signIn(page, server, '/upload');
        // Every page weighed as a first visit: nothing from the cache.
        const cdp = await context.newCDPSession(page);
        await cdp.send('Network.enable');
        await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
        const weigh = async (url, isPlayer) => {
          const record = watchPage(page);
          await page.goto(url, { waitUntil: 'load' });
          const sizes = await settled(record);
          const origin = new URL(server.url).origin;
          for (const u of record.requests) assert.equal(new URL(u).origin, origin, `request to another host: ${u}`);
          const total = sizes.filter((s) => !isPlayer(s.url)).reduce((sum, s) => sum + s.bytes, 0);
          console.log(`${url}: ${total} bytes before the player`);
          assert.ok(total > 0 && total < PAGE_BUDGET_BYTES, `${url} weighs ${total} bytes: ${JSON.stringify(sizes)}`);
          return record;
        };
        const upload = await weigh(`${server.url}/upload`, () => false);
        assert.ok(!upload.requests.some((u) => u.includes('/static/tus.min.')), 'the uploader comes with the first file');
        // A video uploaded by an earlier test, once processed (while processing, the page keeps
        // asking for its progress and the growing playlist, so its requests never settle).
        const ready = await until(
          async () =>
            (await (await page.request.get(`${server.url}/api/v1/me/videos`)).json()).videos.find((v) => v.state === 'ready'),
          { deadlineMs: PROCESSING_DEADLINE_MS, intervalMs: 500, what: 'a processed video' },
        );
        // The player: hls.js and the media it loads (playlists, segments, the poster frame).
        await weigh(`${server.url}${ready.watch_url}`, (u) => u.includes('/static/hls.min.') || u.includes('/media/'));
      } finally {
        await context.close();
      }
    });

    test('my videos follows an upload through processing to ready, then deletes it', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      try {
        await signIn(page, server, '/upload');
        await throttleUploads(context, page, 400 * 1024);
        await page.locator('#file').setInputFiles(clips.big);
        await page.getByLabel('Title').fill('To be deleted');
        await page.getByText('Details saved.').waitFor({ timeout: 30_000 });

        // A second tab on "My videos" while the first one uploads: the row follows the video
        // from uploading through processing to ready without a reload.
        const studio = await context.newPage();
        await studio.goto(`${server.url}/studio/videos`);
        const row = studio.locator('.studio-row', { hasText: 'To be deleted' });
        const state = row.locator('[data-role="state"]');
        const seen = [];
        await until(
          async () => {
            const text = (await state.textContent()).trim();
            const kind = text.split(' ')[0];
            if (seen.at(-1) !== kind) seen.push(kind);
            return kind === 'Ready';
          },
          { deadlineMs: PROCESSING_DEADLINE_MS, intervalMs: 100, what: 'the row to turn Ready' },
        );
        console.log(`states seen: ${seen.join(' → ')}`);
        assert.equal(seen[0], 'Uploading', seen.join(' → '));
        assert.equal(seen.at(-1), 'Ready');
        assert.ok(seen.every((k) => ['Uploading', 'Processing', 'Ready'].includes(k)), seen.join(' → '));
        await uploadFinished(page);

        studio.once('dialog', (d) => d.accept());
        await row.getByRole('button', { name: /Delete/ }).click();
        await row.waitFor({ state: 'detached' });
        await studio.reload();
        assert.equal(await studio.locator('.studio-row', { hasText: 'To be deleted' }).count(), 0);
        const gone = await page.request.get(`${server.url}/api/v1/me/videos`);
        assert.ok(!(await gone.json()).videos.some((v) => v.title === 'To be deleted'));
      } finally {
        await context.close();
      }
    });

    test('the watch page without JavaScript has the title and a <video>', async () => {
      const mine = await (await fetch(`${server.url}/api/v1/videos?sort=recent`)).json();
      assert.ok(mine.videos.length >= 1, 'a public video from the first test');
      const v = mine.videos[0];
      const context = await browser.newContext({ javaScriptEnabled: false });
      const page = await context.newPage();
      try {
        const res = await page.goto(server.url + v.watch_url);
        assert.equal(res.status(), 200);
        assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), v.title);
        const src = await page.locator('video source').getAttribute('src');
        assert.match(src, /\/hls\/master\.m3u8$/);
        assert.equal(await page.locator('video').getAttribute('controls'), '');
        // The home page lists it for visitors.
        await page.goto(server.url + '/');
        assert.ok(await page.getByRole('link', { name: v.title }).first().isVisible());
      } finally {
        await context.close();
      }
    });
  });
}
