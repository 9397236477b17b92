// A creator sets their channel's avatar and banner in a real browser with JavaScript turned
// off, on SQLite and on PostgreSQL + Redis: the channel page shows placeholders, the edit page's
// multipart forms upload a PNG made by ffmpeg, and the channel page then shows the re-encoded
// pictures, which the browser decodes at their fixed sizes.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { launchBrowser } from './support/browser.js';
import { startServer, testStacks } from './support/server.js';

const PASSWORD = 'correct horse battery staple';

const stacks = testStacks();

for (const [name, stack] of stacks) {
  describe(`channel pictures in a browser on ${name}`, { timeout: 200_000 }, () => {
    let server;
    let browser;
    let dir;
    let picture;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'turtlemen-pictures-'));
      picture = path.join(dir, 'me.png');
      await promisify(execFile)('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360', '-frames:v', '1', picture]);
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

    test('upload an avatar and a banner on the edit page; the channel page shows them', async () => {
      const context = await browser.newContext({ javaScriptEnabled: false });
      const page = await context.newPage();
      await page.goto(`${server.url}/studio/channels/ann`);
      await page.getByLabel('Username or email').fill('ann');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${server.url}/studio/channels/ann`);

      await page.goto(`${server.url}/@ann`);
      assert.equal(await page.locator('.avatar.placeholder').first().textContent(), 'A');
      await page.getByRole('link', { name: 'Edit channel' }).click();
      await page.waitForURL(`${server.url}/studio/channels/ann`);

      await page.getByLabel(/shown as a 256 × 256 square/).setInputFiles(picture);
      await page.getByRole('button', { name: 'Upload avatar' }).click();
      await page.waitForURL(`${server.url}/studio/channels/ann?done=avatar`);
      await page.getByText('Avatar updated.').waitFor();
      await page.getByLabel(/cropped to 1920 × 320/).setInputFiles(picture);
      await page.getByRole('button', { name: 'Upload banner' }).click();
      await page.waitForURL(`${server.url}/studio/channels/ann?done=banner`);

      await page.goto(`${server.url}/@ann`);
      const avatar = page.locator('.channel-id img.avatar');
      assert.match(await avatar.getAttribute('src'), /^\/media\/channels\/[0-9a-f-]{36}\/avatar-\d+-96\.jpg$/);
      const banner = page.locator('img#channel-banner');
      assert.match(await banner.getAttribute('src'), /banner-\d+-1920\.jpg$/);
      // The browser fetched and decoded both (the page needs no script for that).
      const size = (locator) => locator.evaluate((img) => [img.complete, img.naturalWidth, img.naturalHeight]);
      assert.deepEqual(await size(avatar), [true, 96, 96]);
      // The banner's srcset lets the browser pick 1920 × 320 or 960 × 160 for its viewport (its
      // natural size is then scaled by the picked density); either way it decoded, 6 : 1.
      const [complete, width, height] = await size(banner);
      assert.ok(complete && Math.round(width / height) === 6, `${width} × ${height}`);
      assert.match(await banner.evaluate((img) => img.currentSrc), /banner-\d+-(1920|960)\.jpg$/);
      assert.equal(await page.locator('.avatar.placeholder').count(), 0);
      await context.close();
    });
  });
}
