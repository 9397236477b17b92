// Search in a real browser, on SQLite and on PostgreSQL + Redis: a viewer types into the header's
// search box, sees a suggestion appear, submits, and finds the channel and the video (uploaded with
// tus, processed by ffmpeg) on the search page; then, with JavaScript off, the search page and its
// filters work as a plain form.

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
  describe(`search in a browser on ${name}`, { timeout: 400_000 }, () => {
    let server;
    let browser;
    let dir;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'turtlemen-search-'));
      const clip = path.join(dir, 'turtles.mp4');
      await promisify(execFile)('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi',
        '-i', 'sine', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip]);
      server = await startServer({ stack });
      browser = await launchBrowser();
      const out = await server.cli(['admin', 'create-user', '--username', 'ann', '--email', 'ann@example.org', '--password-stdin'], `${PASSWORD}\n`);
      assert.equal(out.code, 0, out.stderr);

      // Ann makes a channel and uploads a public video into it.
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${server.url}/upload`);
      await signInForm(page, 'ann');
      await page.waitForURL(`${server.url}/upload`);
      const made = await page.request.post(`${server.url}/api/v1/channels`, { data: { handle: 'turtletalks', display_name: 'Turtle Talks' } });
      assert.equal(made.status(), 201, await made.text());
      const bytes = await readFile(clip);
      const meta = [['filename', 'turtles.mp4'], ['title', 'Turtles on parade'], ['privacy', 'public'], ['channel', 'turtletalks']]
        .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',');
      const created = await page.request.post(`${server.url}/api/v1/uploads`, {
        headers: { 'tus-resumable': '1.0.0', 'upload-length': String(bytes.length), 'upload-metadata': meta,
          'content-type': 'application/offset+octet-stream' },
        data: bytes,
      });
      assert.equal(created.status(), 201, await created.text());
      await until(async () => {
        const res = await page.request.get(`${server.url}/api/v1/search?q=parade`);
        return (await res.json()).videos.length === 1;
      }, { deadlineMs: 180_000, intervalMs: 1_000, what: 'the video to be searchable once playable' });
      await context.close();
    });

    after(async () => {
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0, server.logs());
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('a viewer types in the header box, sees a suggestion, and finds the channel and the video', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${server.url}/`);
      const box = page.getByRole('combobox', { name: 'Search Turtlemen' });
      await box.click();
      await box.pressSequentially('turt', { delay: 30 });
      const suggestions = page.getByRole('listbox', { name: 'Suggestions' });
      await suggestions.getByRole('option', { name: /Turtle Talks/ }).waitFor();
      await suggestions.getByRole('option', { name: 'Turtles on parade' }).waitFor();
      assert.equal(await box.getAttribute('aria-expanded'), 'true');
      // The keyboard moves through the list.
      await box.press('ArrowDown');
      assert.equal(await box.getAttribute('aria-activedescendant'), 'site-search-option-0');
      await box.press('Escape');
      assert.equal(await suggestions.isHidden(), true);

      // Submitting the words searches.
      await box.fill('turtle talks');
      await box.press('Enter');
      await page.waitForURL(`${server.url}/search?q=turtle+talks`);
      await page.getByRole('heading', { name: 'Channels', level: 2 }).waitFor();
      assert.equal(await page.getByRole('link', { name: 'Turtle Talks' }).getAttribute('href'), '/@turtletalks');
      await page.getByRole('combobox', { name: 'Search Turtlemen' }).fill('turtles parade');
      await page.getByRole('combobox', { name: 'Search Turtlemen' }).press('Enter');
      await page.waitForURL(`${server.url}/search?q=turtles+parade`);
      const card = page.locator('li.card', { hasText: 'Turtles on parade' });
      assert.equal(await card.getByRole('link', { name: 'Turtle Talks' }).getAttribute('href'), '/@turtletalks');
      assert.match(await card.locator('.duration').textContent(), /^0:0[12]$/);
      assert.match(await card.locator('.views').textContent(), /views?$/);
      await card.getByRole('link', { name: 'Turtles on parade' }).click();
      await page.waitForURL(/\/videos\//);
      assert.deepEqual(errors, []);
      await context.close();
    });

    test('the search page and its filters work without JavaScript', async () => {
      const context = await browser.newContext({ javaScriptEnabled: false });
      const page = await context.newPage();
      const res = await page.goto(`${server.url}/search`);
      assert.equal(res.status(), 200);
      assert.ok((await res.body()).length < PAGE_BUDGET_BYTES, 'the search page is under budget');
      await page.getByLabel('Search for').fill('parade');
      await page.getByLabel('Duration').selectOption('short');
      await page.getByRole('button', { name: 'Search', exact: true }).last().click();
      await page.waitForURL(/\/search\?q=parade&date=&duration=short/);
      await page.getByRole('link', { name: 'Turtles on parade' }).waitFor();
      await page.getByLabel('Duration').selectOption('long');
      await page.getByRole('button', { name: 'Search', exact: true }).last().click();
      await page.getByText('No videos found').waitFor();
      // Bad input: the form again, with the reason.
      const bad = await page.goto(`${server.url}/search?q=${encodeURIComponent('"*()')}`);
      assert.equal(bad.status(), 400);
      await page.getByRole('alert').filter({ hasText: 'type a word' }).waitFor();
      await context.close();
    });
  });
}
