// Journey 2 of DESIGN.md in a real browser, on SQLite and on PostgreSQL + Redis: a signed-out
// viewer opens a video, clicks "Sign in to comment", signs in and lands back on the same video
// with the comment box focused, and posts (comments.js, without a reload); the comment shows.
// Then a threaded reply by someone else: "Show 1 reply" unfolds it in place, and the parent's
// author sees the reply notification in the bell (made by the worker's job).

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
  describe(`comments in a browser on ${name}`, { timeout: 300_000 }, () => {
    let server;
    let browser;
    let dir;
    let clip;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'turtlemen-comments-'));
      clip = path.join(dir, 'turtles.mp4');
      await promisify(execFile)('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi',
        '-i', 'sine', '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip]);
      server = await startServer({ stack });
      browser = await launchBrowser();
      for (const user of ['ann', 'bob', 'carol']) {
        const out = await server.cli(['admin', 'create-user', '--username', user, '--email', `${user}@example.org`, '--password-stdin'], `${PASSWORD}\n`);
        assert.equal(out.code, 0, out.stderr);
      }
    });

    after(async () => {
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0, server.logs());
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('journey 2: sign in to comment, back at the box, post; a reply notifies the parent\'s author', async () => {
      // Ann uploads a public video.
      const creator = await browser.newContext();
      const studio = await creator.newPage();
      await studio.goto(`${server.url}/upload`);
      await signInForm(studio, 'ann');
      await studio.waitForURL(`${server.url}/upload`);
      const bytes = await readFile(clip);
      const meta = [['filename', 'turtles.mp4'], ['title', 'Shell talk'], ['privacy', 'public']]
        .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',');
      const created = await studio.request.post(`${server.url}/api/v1/uploads`, {
        headers: { 'tus-resumable': '1.0.0', 'upload-length': String(bytes.length), 'upload-metadata': meta,
          'content-type': 'application/offset+octet-stream' },
        data: bytes,
      });
      assert.equal(created.status(), 201, await created.text());
      const videoId = created.headers()['video-id'];
      await creator.close();
      const watch = `${server.url}/videos/${videoId}`;

      // Bob, signed out, wants to comment.
      const viewer = await browser.newContext();
      const page = await viewer.newPage();
      await page.goto(watch);
      const size = (await (await page.request.get(watch)).body()).length;
      assert.ok(size < PAGE_BUDGET_BYTES, `the watch page is under budget (${size} bytes)`);
      await page.getByRole('heading', { name: '0 comments' }).waitFor();
      await page.getByRole('link', { name: 'Sign in to comment' }).click();
      await signInForm(page, 'bob');
      await page.waitForURL((u) => u.pathname === `/videos/${videoId}` && u.searchParams.get('comment') === '1');
      await until(() => page.evaluate(() => document.activeElement?.id === 'comment-text'),
        { what: 'the comment box to have the focus' });
      await page.keyboard.type('Hello from *bob*');
      await page.getByRole('button', { name: 'Comment', exact: true }).click();
      const mine = page.locator('article.comment', { hasText: 'Hello from bob' });
      await mine.waitFor();
      assert.equal(await mine.locator('em').textContent(), 'bob', 'the markdown is rendered');
      assert.equal(new URL(page.url()).pathname, `/videos/${videoId}`, 'posted without leaving the video');
      await page.getByRole('heading', { name: '1 comment' }).waitFor();

      // Carol replies in the thread.
      const other = await browser.newContext();
      const carol = await other.newPage();
      await carol.goto(`${server.url}/upload`);
      await signInForm(carol, 'carol');
      await carol.waitForURL(`${server.url}/upload`);
      await carol.goto(watch);
      const parent = carol.locator('article.comment', { hasText: 'Hello from bob' });
      await parent.locator('summary', { hasText: 'Reply' }).click();
      await parent.getByLabel('Your reply').fill('Welcome, bob!');
      await parent.getByRole('button', { name: 'Reply', exact: true }).click();
      await carol.locator('article.comment', { hasText: 'Welcome, bob!' }).waitFor();
      await other.close();

      // Bob sees the reply folded under his comment and unfolds it in place.
      await page.goto(watch);
      const show = page.getByRole('link', { name: 'Show 1 reply' });
      await show.click();
      await page.locator(`#replies-${await mine.getAttribute('id').then((id) => id.replace('comment-', ''))}`, { hasText: 'Welcome, bob!' }).waitFor();
      assert.equal(new URL(page.url()).pathname, `/videos/${videoId}`, 'unfolded without leaving the page');

      // The reply notification reaches bob's bell once the worker's job ran.
      const bell = page.getByRole('link', { name: 'Notifications, 1 unread' });
      await until(async () => {
        await page.goto(watch);
        return (await bell.count()) > 0;
      }, { deadlineMs: 60_000, intervalMs: 500, what: 'the bell to count the reply' });
      await bell.click();
      await page.waitForURL(`${server.url}/notifications`);
      const item = page.locator('li.notification.unread', { hasText: 'replied to your comment' });
      await item.waitFor();
      await item.getByRole('link', { name: 'replied to your comment' }).click();
      await page.locator('article.comment', { hasText: 'Welcome, bob!' }).waitFor();
      await viewer.close();
    });
  });
}
