// Journey 5's chat, in real browsers on SQLite and on PostgreSQL + Redis: a live published by
// ffmpeg (standing in for OBS) plays on the streamer's page and on a visitor's; a second signed-in
// browser posts in the chat and the streamer's page shows the message at once — as text, markup
// inert; the visitor reads it but has no form; the streamer deletes a message and it disappears
// for everyone. When the live ends, the replay's watch page shows the chat in step with the video.

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

async function signedIn(browser, server, username, path) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(server.url + path);
  await signInForm(page, username);
  await page.waitForURL(server.url + path);
  return page;
}

for (const [name, stack] of testStacks()) {
  describe(`live chat in a browser on ${name}`, { timeout: 300_000 }, () => {
    let server;
    let browser;
    let encoder;

    before(async () => {
      server = await startServer({
        stack,
        env: { TURTLEMEN_RTMP_LISTEN: '127.0.0.1:0', TURTLEMEN_LIVE_GRACE_SECS: '2' },
      });
      browser = await launchBrowser();
      for (const user of ['ann', 'bob']) {
        const out = await server.cli(['admin', 'create-user', '--username', user, '--email', `${user}@example.org`, '--password-stdin'], `${PASSWORD}\n`);
        assert.equal(out.code, 0, out.stderr);
      }
    });

    after(async () => {
      encoder?.kill('SIGKILL');
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0, server.logs());
    });

    test('a second browser posts in the chat and the first sees it; the replay shows it in step', async () => {
      const streamer = await signedIn(browser, server, 'ann', '/studio/lives');
      await streamer.getByLabel('Title').fill('Chat with turtles');
      await streamer.getByRole('button', { name: /Create live/ }).click();
      const rtmpUrl = await streamer.getByLabel('Server (RTMP URL)').inputValue();
      const key = await streamer.getByLabel('Stream key').inputValue();
      const liveUrl = await streamer.getByRole('link', { name: 'Chat with turtles' }).first().getAttribute('href');
      encoder = publish(rtmpUrl, key, 25);

      const record = watchPage(streamer);
      await streamer.goto(server.url + liveUrl);
      await streamer.getByText('Live now').waitFor({ timeout: 30_000 });
      await streamer.waitForFunction(() => document.getElementById('video').currentTime > 1, null, { timeout: 60_000 });
      await streamer.waitForFunction(() => document.getElementById('live-chat').dataset.ready === '1');

      const visitor = await (await browser.newContext()).newPage();
      const page = await visitor.goto(server.url + liveUrl);
      assert.ok((await page.body()).length < PAGE_BUDGET_BYTES);
      await visitor.getByText('Sign in to chat.').waitFor();
      assert.equal(await visitor.locator('#chat-form').isHidden(), true);

      const bob = await signedIn(browser, server, 'bob', '/studio/lives');
      await bob.goto(server.url + liveUrl);
      await bob.waitForFunction(() => document.getElementById('live-chat').dataset.ready === '1');
      const text = 'hello turtles <img src=x onerror="window.pwned=1"> <b>bold?</b>';
      await bob.getByLabel('Message').fill(text);
      await bob.getByRole('button', { name: 'Send' }).click();

      // The streamer's and the visitor's pages show it as text: no element came from it.
      for (const p of [streamer, visitor, bob]) {
        const item = p.locator('#chat-messages .chat-message', { hasText: 'hello turtles' });
        await item.waitFor({ timeout: 10_000 });
        assert.equal(await item.locator('.chat-text').textContent(), text);
        assert.equal(await item.locator('img, b.chat-text b').count(), 0);
        assert.equal(await p.evaluate(() => window.pwned), undefined);
      }
      assert.match(await streamer.locator('#chat-messages .chat-author').first().textContent(), /bob/);

      // The streamer deletes a second message: gone from every page.
      await bob.getByLabel('Message').fill('delete me');
      await bob.getByRole('button', { name: 'Send' }).click();
      const doomed = streamer.locator('#chat-messages .chat-message', { hasText: 'delete me' });
      await doomed.waitFor();
      await visitor.locator('#chat-messages .chat-message', { hasText: 'delete me' }).waitFor();
      await doomed.getByRole('button', { name: 'Delete' }).click();
      for (const p of [streamer, visitor, bob]) {
        await p.locator('#chat-messages .chat-message', { hasText: 'delete me' }).waitFor({ state: 'detached', timeout: 10_000 });
      }
      assert.equal(await bob.locator('.chat-delete').count(), 0, 'no moderation for viewers');

      // The live ends; the replay's page replays the chat as the video reaches it.
      encoder.kill('SIGINT');
      await streamer.getByRole('link', { name: 'Watch the replay' }).waitFor({ timeout: 90_000 });
      const replayUrl = await streamer.getByRole('link', { name: 'Watch the replay' }).getAttribute('href');
      const watcher = await (await browser.newContext()).newPage();
      await watcher.goto(server.url + replayUrl);
      await watcher.locator('#replay-chat').waitFor();
      const stamp = await watcher.evaluate(async () => {
        const live = document.getElementById('replay-chat').dataset.liveId;
        const res = await fetch(`/api/v1/lives/${live}/chat/messages`);
        return (await res.json()).messages.map((m) => [m.text, m.stream_ms]);
      });
      assert.deepEqual(stamp.map(([t]) => t), [text], 'the deleted message is not replayed');
      assert.equal(await watcher.locator('#replay-chat-messages .chat-message').count(), 0, 'nothing before its time');
      // Once the replay plays, the message shows when currentTime reaches its stream time.
      const videoId = replayUrl.split('/').pop();
      await watcher.waitForFunction(async (id) => {
        const res = await fetch(`/api/v1/videos/${id}`);
        return res.ok && (await res.json()).state === 'ready';
      }, videoId, { timeout: 180_000, polling: 1000 });
      await watcher.reload();
      // hls.js attaches its source after the page's load event; a play() called before that is
      // aborted by the new load, so play is asked for again until the video runs.
      await watcher.waitForFunction(() => {
        const v = document.getElementById('video');
        v.muted = true;
        if (v.paused && !v.ended && v.readyState >= 1) v.play().catch(() => {});
        return [...document.querySelectorAll('#replay-chat-messages .chat-message')]
          .some((m) => m.textContent.includes('hello turtles'));
      }, null, { timeout: 90_000, polling: 250 }).catch(async (e) => {
        const state = await watcher.evaluate(() => {
          const v = document.getElementById('video');
          return { currentTime: v.currentTime, duration: v.duration, paused: v.paused, ended: v.ended, readyState: v.readyState, src: v.currentSrc };
        });
        throw new Error(`the replayed message never showed (kept at ${stamp[0][1]} ms; player ${JSON.stringify(state)}): ${e.message}`);
      });
      const at = await watcher.evaluate(() => document.getElementById('video').currentTime * 1000);
      assert.ok(at >= stamp[0][1], `shown at ${at} ms, kept at ${stamp[0][1]} ms`);
      for (const u of record.requests) assert.equal(new URL(u).origin, server.url, `request to another host: ${u}`);
    });
  });
}
