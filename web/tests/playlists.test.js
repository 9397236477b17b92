// A viewer's library in a real browser, on SQLite and on PostgreSQL + Redis: a playlist of three
// short clips (made by ffmpeg, uploaded with tus, processed by the worker) played in order from
// "Play all" — the player moves to the next video on `ended`; the Like button (fetch, with
// aria-pressed and the count kept in step, still pressed after a reload); and the resume
// position of a longer clip restored after a reload.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, launchBrowser, signInForm } from './support/browser.js';
import { PAGE_BUDGET_BYTES, startServer, testStacks } from './support/server.js';
import { until } from './support/wait.js';

async function makeClip(dir, name, seconds) {
  const file = path.join(dir, name);
  await promisify(execFile)('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi',
    '-i', 'sine', '-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac',
    '-shortest', file]);
  return file;
}

/** Uploads `file` as a public video titled `title` from `page`'s session; its id once ready. */
async function upload(page, server, file, title) {
  const bytes = await readFile(file);
  const meta = [['filename', path.basename(file)], ['title', title], ['privacy', 'public']]
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',');
  const created = await page.request.post(`${server.url}/api/v1/uploads`, {
    headers: { 'tus-resumable': '1.0.0', 'upload-length': String(bytes.length), 'upload-metadata': meta,
      'content-type': 'application/offset+octet-stream' },
    data: bytes,
  });
  assert.equal(created.status(), 201, await created.text());
  const id = created.headers()['video-id'];
  await until(async () => {
    const res = await page.request.get(`${server.url}/api/v1/videos/${id}`);
    return (await res.json()).state === 'ready';
  }, { deadlineMs: 180_000, intervalMs: 500, what: `${title} to be ready` });
  return id;
}

const stacks = testStacks();

for (const [name, stack] of stacks) {
  describe(`playlists in a browser on ${name}`, { timeout: 600_000 }, () => {
    let server;
    let browser;
    let dir;
    let context;
    let page;
    let ids;
    let long;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'turtlemen-playlist-'));
      const short = await makeClip(dir, 'short.mp4', 2);
      const longClip = await makeClip(dir, 'long.mp4', 14);
      server = await startServer({ stack });
      browser = await launchBrowser();
      const out = await server.cli(['admin', 'create-user', '--username', 'ann', '--email', 'ann@example.org', '--password-stdin'], `${PASSWORD}\n`);
      assert.equal(out.code, 0, out.stderr);
      context = await browser.newContext();
      page = await context.newPage();
      await page.goto(`${server.url}/playlists`);
      await signInForm(page, 'ann');
      await page.waitForURL(`${server.url}/playlists`);
      ids = [];
      for (const title of ['First clip', 'Second clip', 'Third clip']) ids.push(await upload(page, server, short, title));
      long = await upload(page, server, longClip, 'Long clip');
    });

    after(async () => {
      await context?.close();
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0, server.logs());
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('a playlist made on its page plays in order, moving on at the end of each video', async () => {
      // Made with the form on /playlists, filled through the API.
      await page.getByLabel('Title').fill('Three clips');
      await page.getByLabel('Privacy').selectOption('public');
      await page.getByRole('button', { name: 'Create' }).click();
      await page.waitForURL(/\/playlists\/[0-9a-f-]{36}$/);
      const list = page.url().split('/').pop();
      for (const id of ids) {
        const res = await page.request.post(`${server.url}/api/v1/playlists/${list}/items`, { data: { video_id: id } });
        assert.equal(res.status(), 201, await res.text());
      }
      const res = await page.goto(`${server.url}/playlists/${list}`);
      assert.ok((await res.body()).length < PAGE_BUDGET_BYTES, 'the playlist page is under budget');
      assert.deepEqual(await page.locator('.playlist-item .card-title').allTextContents(), ['First clip', 'Second clip', 'Third clip']);

      await page.getByRole('link', { name: 'Play all' }).click();
      for (let i = 0; i < 3; i++) {
        await page.waitForURL(`${server.url}/videos/${ids[i]}?list=${list}&index=${i + 1}`);
        assert.equal(await page.locator('#video-title').textContent(), ['First clip', 'Second clip', 'Third clip'][i]);
        assert.equal(await page.locator('.playlist-panel [aria-current="true"]').textContent(), ['First clip', 'Second clip', 'Third clip'][i]);
        await page.evaluate(() => {
          const v = document.getElementById('video');
          v.muted = true;
          v.play().catch(() => {});
        });
        if (i < 2) {
          // The player itself moves on when the video ends (no click).
          await page.waitForURL(`${server.url}/videos/${ids[i + 1]}?list=${list}&index=${i + 2}`, { timeout: 60_000 });
        }
      }
      await until(() => page.evaluate(() => document.getElementById('video').ended), { deadlineMs: 30_000, what: 'the last video to end' });
      assert.equal(page.url(), `${server.url}/videos/${ids[2]}?list=${list}&index=3`, 'the end of the list stays');
    });

    test('the Like button toggles with fetch and stays pressed after a reload', async () => {
      await page.goto(`${server.url}/videos/${ids[0]}`);
      const like = page.getByRole('button', { name: /^Like/ });
      assert.equal(await like.getAttribute('aria-pressed'), 'false');
      const url = page.url();
      await like.click();
      await until(async () => (await like.getAttribute('aria-pressed')) === 'true', { what: 'the button pressed' });
      assert.equal(await page.locator('#like-count').textContent(), '1');
      assert.equal(page.url(), url, 'no navigation: fetch');
      await page.reload();
      assert.equal(await page.getByRole('button', { name: /^Like/ }).getAttribute('aria-pressed'), 'true');
      const video = await (await page.request.get(`${server.url}/api/v1/videos/${ids[0]}`)).json();
      assert.equal(video.likes, 1);
      assert.equal(video.my_rating, 'like');
    });

    test('the watch page resumes where the viewer left off', async () => {
      await page.goto(`${server.url}/videos/${long}`);
      await page.evaluate(async () => {
        const v = document.getElementById('video');
        v.muted = true;
        await v.play().catch(() => {});
        v.currentTime = 6;
        await new Promise((resolve) => v.addEventListener('seeked', resolve, { once: true }));
        v.pause();
      });
      await until(async () => {
        const res = await page.request.get(`${server.url}/api/v1/me/history`);
        const entry = (await res.json()).entries.find((e) => e.video.id === long);
        return entry && entry.position_secs >= 5;
      }, { deadlineMs: 20_000, intervalMs: 250, what: 'the position in the history' });
      await page.reload();
      assert.ok(Number(await page.locator('#player').getAttribute('data-start')) >= 5);
      await until(() => page.evaluate(() => document.getElementById('video').currentTime >= 5), {
        deadlineMs: 30_000, what: 'the player to start at the stored position',
      });
    });
  });
}
