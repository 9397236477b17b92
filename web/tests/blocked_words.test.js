// Blocked words in a real browser, on SQLite and on PostgreSQL + Redis, JavaScript off: a channel
// owner adds a word on the channel's edit page, and a viewer's comment holding it is not shown
// (held for the owner's approval) with the reason on the watch page; an admin sets an
// instance-wide word on /admin/blocked-words (reached from the admin pages), and it applies on
// any channel's video, while a comment without a word is shown at once.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, launchBrowser, signInForm } from './support/browser.js';
import { createUsers, startServer, testStacks, uploadBytes } from './support/server.js';

const stacks = testStacks();

/** Comments `text` on the video at `watch` with the form; the page after it. */
async function commentOn(page, watch, text) {
  await page.goto(watch);
  await page.getByLabel('Add a comment').fill(text);
  await page.getByRole('button', { name: 'Comment', exact: true }).click();
  await page.waitForURL((u) => u.pathname === new URL(watch).pathname && (u.hash === '#comments' || u.hash.startsWith('#comment-')));
}

for (const [name, stack] of stacks) {
  describe(`blocked words in a browser on ${name}`, { timeout: 200_000 }, () => {
    let server;
    let browser;

    before(async () => {
      server = await startServer({ stack });
      browser = await launchBrowser();
      await createUsers(server, [['ada', true], ['ann', false], ['bob', false], ['carol', false]], PASSWORD);
    });

    after(async () => {
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0, server.logs());
    });

    test('a channel\'s word and the instance\'s hold a viewer\'s comment, with the reason on the watch page', async () => {
      // The owner adds a word on the channel's edit page.
      const owner = await browser.newContext({ javaScriptEnabled: false });
      const studio = await owner.newPage();
      await studio.goto(`${server.url}/studio/channels/ann`);
      await signInForm(studio, 'ann');
      await studio.waitForURL(`${server.url}/studio/channels/ann`);
      await studio.getByRole('textbox', { name: 'Blocked words' }).fill('Turnip\nbuy now');
      await studio.getByRole('button', { name: 'Save blocked words' }).click();
      await studio.waitForURL(`${server.url}/studio/channels/ann?done=words`);
      await studio.getByRole('status').filter({ hasText: 'Blocked words saved.' }).waitFor();
      assert.equal(await studio.getByRole('textbox', { name: 'Blocked words' }).inputValue(), 'buy now\nturnip');
      const annVideo = await uploadBytes(server, studio, 'Soup recipes', Buffer.alloc(2048, 7));

      // A viewer's comment holding it is not shown, and the page says why.
      const viewerContext = await browser.newContext({ javaScriptEnabled: false });
      const viewer = await viewerContext.newPage();
      await viewer.goto(`${server.url}/studio/videos`);
      await signInForm(viewer, 'bob');
      await viewer.waitForURL(`${server.url}/studio/videos`);
      await commentOn(viewer, annVideo, 'Fresh TURNIP soup');
      await viewer.getByRole('status').filter({ hasText: 'it holds a word this channel or site reviews' }).waitFor();
      const visitorContext = await browser.newContext({ javaScriptEnabled: false });
      const visitor = await visitorContext.newPage();
      await visitor.goto(annVideo);
      await visitor.getByRole('heading', { name: '0 comments' }).waitFor();
      assert.equal(await visitor.getByText('Fresh TURNIP soup').count(), 0, 'not shown to others');

      // An admin sets an instance-wide word, from the admin pages.
      const adminContext = await browser.newContext({ javaScriptEnabled: false });
      const admin = await adminContext.newPage();
      await admin.goto(`${server.url}/studio/videos`);
      await signInForm(admin, 'ada');
      await admin.waitForURL(`${server.url}/studio/videos`);
      await admin.goto(`${server.url}/admin/reports`);
      await admin.getByRole('link', { name: 'Blocked words' }).click();
      await admin.waitForURL(`${server.url}/admin/blocked-words`);
      await admin.getByRole('textbox', { name: 'Blocked words' }).fill('Radish');
      await admin.getByRole('button', { name: 'Save blocked words' }).click();
      await admin.waitForURL(`${server.url}/admin/blocked-words?done=saved`);
      await admin.getByRole('status').filter({ hasText: 'Blocked words saved.' }).waitFor();

      // It applies on another channel's video; a comment without a word is shown at once.
      const otherContext = await browser.newContext({ javaScriptEnabled: false });
      const other = await otherContext.newPage();
      await other.goto(`${server.url}/studio/videos`);
      await signInForm(other, 'carol');
      await other.waitForURL(`${server.url}/studio/videos`);
      const carolVideo = await uploadBytes(server, other, 'Garden tour', Buffer.alloc(2048, 7));
      await commentOn(viewer, carolVideo, 'Nice radish bed');
      await viewer.getByRole('status').filter({ hasText: 'it holds a word this channel or site reviews' }).waitFor();
      await commentOn(viewer, carolVideo, 'Nice garden');
      await visitor.goto(carolVideo);
      await visitor.getByText('Nice garden').waitFor();
      assert.equal(await visitor.getByText('Nice radish bed').count(), 0, 'not shown to others');
      // The viewer is not an admin: the instance's page does not exist for them.
      const refused = await viewer.goto(`${server.url}/admin/blocked-words`);
      assert.equal(refused.status(), 404);
      await Promise.all([owner.close(), viewerContext.close(), visitorContext.close(), adminContext.close(), otherContext.close()]);
    });
  });
}
