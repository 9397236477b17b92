// A viewer follows a channel in a real browser, on SQLite and on PostgreSQL + Redis, with
// JavaScript turned off for the viewer: visit the channel page, sign in from its "Sign in to
// subscribe" link and come back, subscribe with the form, and see the creator's new public video
// (uploaded with tus, processed by ffmpeg) on /subscriptions with its channel, then unsubscribe;
// and a creator with two channels picks one on the upload page.

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

const stacks = testStacks();

for (const [name, stack] of stacks) {
  describe(`channels in a browser on ${name}`, { timeout: 400_000 }, () => {
    let server;
    let browser;
    let dir;
    let clip;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'turtlemen-channel-'));
      clip = path.join(dir, 'turtles.mp4');
      await promisify(execFile)('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi',
        '-i', 'sine', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip]);
      server = await startServer({ stack });
      browser = await launchBrowser();
      for (const user of ['ann', 'bob']) {
        const out = await server.cli(['admin', 'create-user', '--username', user, '--email', `${user}@example.org`, '--password-stdin'], `${PASSWORD}\n`);
        assert.equal(out.code, 0, out.stderr);
      }
    });

    after(async () => {
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0, server.logs());
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('subscribe on the channel page without JavaScript; the new video shows on /subscriptions', async () => {
      const viewer = await browser.newContext({ javaScriptEnabled: false });
      const page = await viewer.newPage();
      const res = await page.goto(`${server.url}/@ann`);
      assert.equal(res.status(), 200);
      assert.ok((await res.body()).length < PAGE_BUDGET_BYTES, 'the channel page is under budget');
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'ann');
      await page.getByRole('link', { name: 'Sign in to subscribe' }).click();
      await signInForm(page, 'bob');
      await page.waitForURL(`${server.url}/@ann`);
      await page.getByRole('button', { name: 'Subscribe to ann' }).click();
      await page.waitForURL(`${server.url}/@ann?done=subscribed`);
      await page.getByRole('button', { name: 'Unsubscribe from ann' }).waitFor();
      assert.equal(await page.locator('#subscriber-count').textContent(), '1 subscriber');

      // The feed is empty until the creator publishes.
      await page.goto(`${server.url}/subscriptions`);
      await page.getByText('No videos yet').waitFor();

      // The creator uploads a public video (tus, in one request) from their own session.
      const creator = await browser.newContext();
      const studio = await creator.newPage();
      await studio.goto(`${server.url}/upload`);
      await signInForm(studio, 'ann');
      await studio.waitForURL(`${server.url}/upload`);
      const bytes = await readFile(clip);
      const meta = [['filename', 'turtles.mp4'], ['title', 'Turtles on parade'], ['privacy', 'public']]
        .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',');
      const created = await studio.request.post(`${server.url}/api/v1/uploads`, {
        headers: { 'tus-resumable': '1.0.0', 'upload-length': String(bytes.length), 'upload-metadata': meta,
          'content-type': 'application/offset+octet-stream' },
        data: bytes,
      });
      assert.equal(created.status(), 201, await created.text());

      // It appears in the viewer's feed once playable, with its channel.
      await until(async () => {
        await page.goto(`${server.url}/subscriptions`);
        return (await page.getByRole('link', { name: 'Turtles on parade' }).count()) > 0;
      }, { deadlineMs: 180_000, intervalMs: 1_000, what: 'the new video on /subscriptions' });
      const card = page.locator('li.card', { hasText: 'Turtles on parade' });
      assert.equal(await card.getByRole('link', { name: 'ann' }).getAttribute('href'), '/@ann');
      assert.match(await card.locator('.views').textContent(), /views?$/);

      // Unsubscribing from the watch page comes back to the video.
      await card.getByRole('link', { name: 'Turtles on parade' }).click();
      const watchUrl = page.url();
      await page.getByRole('button', { name: 'Unsubscribe from ann' }).click();
      await page.waitForURL(watchUrl);
      await page.getByRole('button', { name: 'Subscribe to ann' }).waitFor();
      await creator.close();
      await viewer.close();
    });

    test('the upload page publishes in the channel chosen', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${server.url}/upload`);
      await signInForm(page, 'ann');
      await page.waitForURL(`${server.url}/upload`);
      const made = await page.request.post(`${server.url}/api/v1/channels`, { data: { handle: 'ann-diy', display_name: 'Ann DIY' } });
      assert.equal(made.status(), 201, await made.text());
      await page.reload();
      await page.getByLabel('Channel').selectOption('ann-diy');
      await page.locator('#file').setInputFiles(clip);
      await page.locator('#upload-progress-label').filter({ hasText: 'Uploaded' }).waitFor({ timeout: 90_000 });
      const mine = await (await page.request.get(`${server.url}/api/v1/me/videos`)).json();
      const latest = mine.videos[0];
      assert.equal(latest.channel.handle, 'ann-diy');
      assert.equal(latest.channel.display_name, 'Ann DIY');
      await context.close();
    });
  });
}
