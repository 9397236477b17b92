// Journey 6 of DESIGN.md in a real browser, on SQLite and on PostgreSQL + Redis, JavaScript off:
// a creator uploads a video and a viewer reports it with the watch page's form; an admin signs
// in, opens /admin/reports, hides the video (a visitor no longer finds it, its owner sees why)
// and bans its owner; the owner's open browser session is signed out on its next page load,
// and signing in again says the account is suspended.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, launchBrowser, signInForm } from './support/browser.js';
import { PAGE_BUDGET_BYTES, createUsers, startServer, testStacks, uploadBytes } from './support/server.js';

const stacks = testStacks();

for (const [name, stack] of stacks) {
  describe(`moderation in a browser on ${name}`, { timeout: 200_000 }, () => {
    let server;
    let browser;

    before(async () => {
      server = await startServer({ stack });
      browser = await launchBrowser();
      await createUsers(server, [['ada', true], ['ann', false], ['bob', false]], PASSWORD);
    });

    after(async () => {
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0, server.logs());
    });

    test('journey 6: a reported video hidden, its owner banned, their open session ended', async () => {
      // The creator, signed in, uploads a video (its bytes in the creation request).
      const creator = await browser.newContext({ javaScriptEnabled: false });
      const studio = await creator.newPage();
      await studio.goto(`${server.url}/studio/videos`);
      await signInForm(studio, 'ann');
      await studio.waitForURL(`${server.url}/studio/videos`);
      const watchUrl = await uploadBytes(server, studio, 'Buy cheap shells', Buffer.alloc(2048, 7), 'spam.mp4');

      // A viewer reports it with the form under the video.
      const viewer = await browser.newContext({ javaScriptEnabled: false });
      const page = await viewer.newPage();
      await page.goto(watchUrl);
      await page.getByRole('link', { name: 'Sign in to report this video' }).click();
      await signInForm(page, 'bob');
      await page.waitForURL(watchUrl);
      await page.getByText('Report this video').click();
      await page.getByLabel('What is wrong with this video?').fill('Spam <b>links</b> everywhere');
      await page.getByRole('button', { name: 'Send report' }).click();
      await page.getByRole('status').filter({ hasText: 'Your report is with the moderators.' }).waitFor();

      // The admin signs in and works the queue.
      const adminContext = await browser.newContext({ javaScriptEnabled: false });
      const admin = await adminContext.newPage();
      await admin.goto(`${server.url}/studio/videos`);
      await signInForm(admin, 'ada');
      await admin.waitForURL(`${server.url}/studio/videos`);
      await admin.goto(`${server.url}/admin/reports`);
      const res = await admin.request.get(`${server.url}/admin/reports`);
      assert.ok((await res.body()).length < PAGE_BUDGET_BYTES, 'the queue is under budget');
      const target = admin.locator('li.reported-target', { hasText: 'Buy cheap shells' });
      await target.waitFor();
      await target.getByText('Spam <b>links</b> everywhere').waitFor();
      await target.getByLabel('Reason shown to the owner').fill('Spam links');
      await target.getByRole('button', { name: 'Hide' }).click();
      await admin.waitForURL(`${server.url}/admin/reports?done=hide`);
      await admin.getByRole('status').filter({ hasText: 'Hidden' }).waitFor();

      // Gone for a visitor; its owner sees it and why.
      const visitor = await browser.newContext({ javaScriptEnabled: false });
      const anon = await visitor.newPage();
      const gone = await anon.goto(watchUrl);
      assert.equal(gone.status(), 404);
      await studio.goto(watchUrl);
      await studio.getByText('This video is hidden by the moderators: Spam links').waitFor();

      // The admin bans the owner from the accounts page.
      await admin.goto(`${server.url}/admin/users?q=ann`);
      const account = admin.locator('li.account', { hasText: '@ann' });
      await account.getByLabel('Reason').fill('spam ring');
      await account.getByRole('button', { name: 'Ban ann' }).click();
      await admin.waitForURL(/\/admin\/users\?q=ann&done=ban$/);
      await admin.locator('li.account', { hasText: 'banned' }).waitFor();

      // The owner's open session ends at once: the very next page load is signed out and sent
      // to sign in (the ban is announced to the gateway, which drops the session it read a
      // moment ago), never the suspended page first.
      const next = await studio.goto(`${server.url}/studio/videos`);
      assert.match(studio.url(), /\/auth\/login/, 'signed out and sent to sign in');
      assert.equal(next.status(), 200);
      await signInForm(studio, 'ann');
      await studio.getByText('This account is suspended').waitFor();
      await Promise.all([creator.close(), viewer.close(), adminContext.close(), visitor.close()]);
    });
  });
}
