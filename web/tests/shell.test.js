// Browser tests of the web shell: the home page, dark mode, the error page and the static
// assets, against a real `turtlemen serve` in Debian's Chromium.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, settled, watchPage } from './support/browser.js';
import { PAGE_BUDGET_BYTES, startServer } from './support/server.js';
import { until } from './support/wait.js';

describe('web shell', { timeout: 120_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    if (server) {
      const code = await server.stop();
      assert.equal(code, 0, `turtlemen should exit cleanly on SIGTERM:\n${server.logs()}`);
    }
  });

  /** A fresh page in a fresh context, recorded from its first request. */
  async function open(path, contextOptions = {}) {
    const context = await browser.newContext(contextOptions);
    const page = await context.newPage();
    const record = watchPage(page);
    const response = await page.goto(server.url + path, { waitUntil: 'load' });
    return { context, page, record, response };
  }

  test('the home page has its landmarks, styles and stays small and local', async () => {
    const { context, page, record, response } = await open('/');
    try {
      assert.equal(response.status(), 200);
      assert.equal(await page.title(), 'Turtlemen');
      assert.equal(await page.getAttribute('html', 'lang'), 'en');

      for (const role of ['banner', 'navigation', 'main', 'contentinfo']) {
        assert.equal(await page.getByRole(role).count(), 1, `one ${role} landmark`);
      }
      const nav = page.getByRole('navigation', { name: 'Main' });
      for (const [name, href] of [
        ['Home', '/'],
        ['Subscriptions', '/subscriptions'],
        ['Upload', '/upload'],
        ['Sign in', '/oauth2/start?rd=/'],
      ]) {
        assert.equal(await nav.getByRole('link', { name, exact: true }).getAttribute('href'), href, name);
      }
      for (const heading of ['Recent', 'Trending']) {
        assert.equal(await page.getByRole('heading', { name: heading, level: 2 }).count(), 1, heading);
      }
      assert.equal(await page.locator('.empty').count(), 2, 'each empty list says so');

      // The stylesheet applied: the skip link is moved off screen, the body uses the system font.
      const styles = await page.evaluate(() => {
        const skip = getComputedStyle(document.querySelector('.skip-link'));
        return { position: skip.position, top: parseFloat(skip.top), font: getComputedStyle(document.body).fontFamily };
      });
      assert.equal(styles.position, 'absolute');
      assert.ok(styles.top < 0, `skip link hidden until focused (top ${styles.top})`);
      assert.match(styles.font, /system-ui/);

      // The script ran (progressive enhancement only).
      await page.waitForFunction(() => document.documentElement.classList.contains('js'));

      // Every request went to the server, and the page stayed within budget.
      const sizes = await settled(record);
      const origin = new URL(server.url).origin;
      for (const url of record.requests) {
        assert.equal(new URL(url).origin, origin, `request to another host: ${url}`);
      }
      assert.ok(!record.requests.some((u) => /\/static\/(hls|tus)\./.test(u)), 'no player or uploader here');
      const total = sizes.reduce((sum, s) => sum + s.bytes, 0);
      console.log(`home page weight: ${total} bytes in ${sizes.length} responses`);
      assert.ok(total > 0 && total < PAGE_BUDGET_BYTES, `home page weighs ${total} bytes`);
      assert.deepEqual(record.errors, []);
    } finally {
      await context.close();
    }
  });

  for (const javaScriptEnabled of [true, false]) {
    test(`the skip link moves keyboard focus to the main content (JavaScript ${javaScriptEnabled ? 'on' : 'off'})`, async () => {
      const { context, page, record } = await open('/', { javaScriptEnabled });
      try {
        await page.keyboard.press('Tab');
        const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
        assert.equal(focused, 'Skip to content');
        assert.ok(
          await page.locator('.skip-link').evaluate((el) => el.getBoundingClientRect().top >= 0),
          'the focused skip link is on screen',
        );
        await page.keyboard.press('Enter');
        await page.waitForFunction(() => document.activeElement?.id === 'main');
        assert.deepEqual(record.errors, []);
      } finally {
        await context.close();
      }
    });
  }

  test('the home page works without JavaScript', async () => {
    const { context, page, record } = await open('/', { javaScriptEnabled: false });
    try {
      assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link').count(), 4);
      for (const heading of ['Recent', 'Trending']) {
        assert.ok(await page.getByRole('heading', { name: heading, level: 2 }).isVisible(), heading);
      }
      assert.ok(await page.getByRole('link', { name: 'Upload a video' }).first().isVisible());
      assert.equal(await page.evaluate(() => document.documentElement.classList.contains('js')), false);
      assert.equal(await page.locator('.skip-link').evaluate((el) => getComputedStyle(el).position), 'absolute');
      await settled(record);
      assert.deepEqual(record.errors, []);
    } finally {
      await context.close();
    }
  });

  test('dark mode follows the system setting', async () => {
    const background = async (colorScheme) => {
      const { context, page } = await open('/', { colorScheme });
      try {
        return await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      } finally {
        await context.close();
      }
    };
    const light = await background('light');
    const dark = await background('dark');
    assert.notEqual(light, dark);
    assert.equal(light, 'rgb(255, 255, 255)');
  });

  test('an unknown page is an HTML 404 with a way home', async () => {
    const { context, page, response } = await open('/no/such/page');
    try {
      assert.equal(response.status(), 404);
      assert.match(response.headers()['content-type'], /^text\/html/);
      assert.match(await page.title(), /^404/);
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Not Found');
      assert.equal(await page.getByRole('main').getByRole('link', { name: /home/i }).getAttribute('href'), '/');
      assert.equal(await page.getByRole('main').count(), 1);
    } finally {
      await context.close();
    }
  });

  test('hashed static assets are immutable and revalidate', async () => {
    const html = await (await fetch(server.url + '/')).text();
    const href = html.match(/href="(\/static\/app\.[0-9a-f]{10}\.css)"/)?.[1];
    assert.ok(href, 'the layout links the hashed stylesheet');

    const res = await fetch(server.url + href);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(res.headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    // fetch accepts gzip: the stylesheet comes compressed, under its own entity tag.
    assert.equal(res.headers.get('content-encoding'), 'gzip');
    assert.equal(res.headers.get('vary'), 'accept-encoding');
    const etag = res.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{10}-gzip"$/);
    await res.arrayBuffer();

    const again = await fetch(server.url + href, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);

    const missing = await fetch(server.url + '/static/app.0000000000.css');
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
  });
});
