// Journey 4 of DESIGN.md in a real browser, on SQLite and on PostgreSQL + Redis, JavaScript off:
// a viewer finds a creator's channel with the header's search box and subscribes; the creator
// uploads a public video (tus, processed by ffmpeg and the worker's fan-out job); the bell in the
// viewer's header shows the unread count with its accessible name, the subscriptions page lists
// the new video, /notifications lists it, and "Mark all as read" (a form) clears the bell.

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
  describe(`notifications in a browser on ${name}`, { timeout: 400_000 }, () => {
    let server;
    let browser;
    let dir;
    let clip;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'turtlemen-notify-'));
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

    test('journey 4: search, subscribe, the new video in the feed and the bell, mark all read', async () => {
      const viewer = await browser.newContext({ javaScriptEnabled: false });
      const page = await viewer.newPage();
      await page.goto(`${server.url}/`);
      const box = page.getByRole('searchbox', { name: 'Search Turtlemen' });
      await box.fill('ann');
      await box.press('Enter');
      await page.waitForURL(`${server.url}/search?q=ann`);
      const channels = page.getByRole('region', { name: 'Channels' });
      await channels.getByRole('link', { name: 'ann', exact: true }).first().click();
      await page.waitForURL(`${server.url}/@ann`);
      await page.getByRole('link', { name: 'Sign in to subscribe' }).click();
      await signInForm(page, 'bob');
      await page.waitForURL(`${server.url}/@ann`);
      await page.getByRole('button', { name: 'Subscribe to ann' }).click();
      await page.waitForURL(`${server.url}/@ann?done=subscribed`);
      await page.getByRole('link', { name: 'Notifications, none unread' }).waitFor();

      // The creator uploads a public video from their own session.
      const creator = await browser.newContext();
      const studio = await creator.newPage();
      await studio.goto(`${server.url}/upload`);
      await signInForm(studio, 'ann');
      await studio.waitForURL(`${server.url}/upload`);
      const bytes = await readFile(clip);
      const meta = [['filename', 'turtles.mp4'], ['title', 'Shell news'], ['privacy', 'public']]
        .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',');
      const created = await studio.request.post(`${server.url}/api/v1/uploads`, {
        headers: { 'tus-resumable': '1.0.0', 'upload-length': String(bytes.length), 'upload-metadata': meta,
          'content-type': 'application/offset+octet-stream' },
        data: bytes,
      });
      assert.equal(created.status(), 201, await created.text());
      // Ann's bell tells her about her new subscriber, once the job has run (the page is
      // loaded again until it has: a page shows the count of the moment it was made).
      const annBell = studio.getByRole('link', { name: 'Notifications, 1 unread' });
      await until(async () => {
        await studio.goto(`${server.url}/`);
        return (await annBell.count()) > 0;
      }, { deadlineMs: 180_000, intervalMs: 1_000, what: "the creator's bell to count the new subscriber" });
      await creator.close();

      // Once playable, the fan-out job reaches bob: his bell counts it.
      const bell = page.getByRole('link', { name: 'Notifications, 1 unread' });
      await until(async () => {
        await page.goto(`${server.url}/`);
        return (await bell.count()) > 0;
      }, { deadlineMs: 180_000, intervalMs: 1_000, what: 'the bell to count the new video' });
      assert.equal(await page.locator('#unread-badge').textContent(), '1');
      // The subscriptions page holds it too.
      await page.getByRole('link', { name: 'Subscriptions', exact: true }).click();
      await page.waitForURL(`${server.url}/subscriptions`);
      await page.getByRole('link', { name: 'Shell news' }).first().waitFor();
      await page.goto(`${server.url}/`);

      await bell.click();
      await page.waitForURL(`${server.url}/notifications`);
      const res = await page.request.get(`${server.url}/notifications`);
      assert.ok((await res.body()).length < PAGE_BUDGET_BYTES, 'the notifications page is under budget');
      const item = page.locator('li.notification.unread', { hasText: 'Shell news' });
      await item.waitFor();
      assert.equal(await item.getByRole('link', { name: 'ann' }).getAttribute('href'), '/@ann');
      assert.match(await item.getByRole('link', { name: 'Shell news' }).getAttribute('href'), /^\/videos\/[0-9a-f-]{36}$/);
      assert.equal(await page.getByRole('link', { name: 'Notifications, 1 unread' }).getAttribute('aria-current'), 'page');

      await page.getByRole('button', { name: 'Mark all as read' }).click();
      await page.waitForURL(`${server.url}/notifications?done=all`);
      await page.getByRole('status').filter({ hasText: 'All marked as read.' }).waitFor();
      await page.getByRole('link', { name: 'Notifications, none unread' }).waitFor();
      assert.equal(await page.locator('#unread-badge').count(), 0);
      assert.equal(await page.locator('li.notification.unread').count(), 0);
      assert.equal(await page.locator('li.notification', { hasText: 'Shell news' }).count(), 1, 'still listed, read');

      // The settings form works without JavaScript too.
      await page.getByLabel('New subscribers to my channels').uncheck();
      await page.getByRole('button', { name: 'Save settings' }).click();
      await page.waitForURL(`${server.url}/notifications?done=settings`);
      assert.equal(await page.getByLabel('New subscribers to my channels').isChecked(), false);
      assert.equal(await page.getByLabel('New videos from channels I follow').isChecked(), true);
      await viewer.close();
    });
  });
}
