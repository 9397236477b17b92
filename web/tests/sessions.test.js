// Sessions that end when they should, in a real browser: two browsers signed in as one user, and
// ending the auth service's session in one way or another — a password change or a reset in one
// browser, "Sign out this session" or the account page's own "Sign out" — signs the gateway
// session out too, within the gateway's short session cache rather than when its access token
// expires (five minutes). A link on another site to `/oauth2/sign_out` only shows a page that
// asks; the navigation's "Sign out" button signs out. On SQLite and on PostgreSQL with Redis.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { launchBrowser } from './support/browser.js';
import { externalUrls, startServer } from './support/server.js';
import { until } from './support/wait.js';

const PASSWORD = 'correct horse battery staple';

const stacks = [['SQLite', 'embedded']];
if (externalUrls()) stacks.push(['PostgreSQL and Redis', 'external']);

for (const [name, stack] of stacks) describe(`sessions that end (${name})`, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ stack });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    if (server) assert.equal(await server.stop(), 0);
  });

  async function newUser(username) {
    const out = await server.cli(
      ['admin', 'create-user', '--username', username, '--email', `${username}@example.org`, '--password-stdin'],
      `${PASSWORD}\n`,
    );
    assert.equal(out.code, 0, out.stderr);
  }

  /** A new browser context signed in through the gateway as `username`. */
  async function signedIn(username) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/oauth2/start?rd=/`);
    await page.getByLabel('Username or email').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${server.url}/`);
    assert.equal(await meStatus(page), 200);
    return { context, page };
  }

  const meStatus = async (page) => (await page.request.get(`${server.url}/api/v1/me`)).status();

  /**
   * Waits until `page`'s `/api/v1/me` answers 401. The gateway may reuse a session it read in
   * the last two seconds; the deadline is well inside the access token's five minutes.
   */
  async function signedOut(page, what) {
    await until(async () => (await meStatus(page)) === 401, { deadlineMs: 15_000, what });
  }

  test('a password change in one browser signs the other out', async () => {
    await newUser('pat');
    const one = await signedIn('pat');
    const two = await signedIn('pat');
    await one.page.goto(`${server.url}/auth/account`);
    await one.page.getByLabel('Current password').fill(PASSWORD);
    await one.page.getByLabel('New password').fill('a brand new passphrase');
    await one.page.getByRole('button', { name: 'Change password' }).click();
    await one.page.getByText('Your password was changed').waitFor();
    await signedOut(two.page, 'the other browser to be signed out');
    assert.equal(await meStatus(one.page), 200, 'the browser that changed it stays signed in');
    // The signed-out browser is sent to sign in again.
    await two.page.goto(`${server.url}/upload`);
    await two.page.getByLabel('Username or email').waitFor();
    await one.context.close();
    await two.context.close();
  });

  test('a password reset signs every browser out', async () => {
    await newUser('rex');
    const signed = await signedIn('rex');
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/auth/forgot-password`);
    await page.getByLabel('Username or email').fill('rex');
    await page.getByRole('button', { name: 'Send the link' }).click();
    const link = await until(
      async () => {
        const dir = path.join(server.dataDir, 'outbox');
        const names = await readdir(dir).catch(() => []);
        for (const name of names.filter((n) => n.endsWith('.eml'))) {
          const text = (await readFile(path.join(dir, name), 'utf8')).replace(/=\r?\n/g, '').replace(/=3D/g, '=');
          const match = text.includes('To: rex@example.org') && text.match(/(http\S*\/auth\/reset-password\?token=[A-Za-z0-9_-]+)/);
          if (match) return match[1];
        }
        return null;
      },
      { what: 'the reset mail' },
    );
    await page.goto(link);
    await page.locator('#new_password').fill('a brand new passphrase');
    await page.getByRole('button', { name: 'Set the new password' }).click();
    await page.getByText('signed out').first().waitFor();
    await signedOut(signed.page, 'the signed-in browser to be signed out');
    await signed.context.close();
    await context.close();
  });

  test('"Sign out this session" and the account page\'s "Sign out" end the gateway sessions', async () => {
    await newUser('sam');
    const one = await signedIn('sam');
    const two = await signedIn('sam');
    await one.page.goto(`${server.url}/auth/account`);
    const other = one.page.locator('.session-list li').filter({ hasNotText: '(this browser)' });
    await other.getByRole('button', { name: 'Sign out this session' }).click();
    await one.page.getByRole('heading', { name: 'Account security' }).waitFor();
    await signedOut(two.page, 'the revoked session to be signed out');
    assert.equal(await meStatus(one.page), 200);

    await one.page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await one.page.getByText('You are signed out').waitFor();
    await signedOut(one.page, 'the account page sign-out to reach the gateway');
    await one.context.close();
    await two.context.close();
  });

  test('a link on another site to /oauth2/sign_out only asks; the Sign out button signs out', async () => {
    await newUser('val');
    const { context, page } = await signedIn('val');
    // Another site: a page on another origin linking to the sign-out endpoint.
    const evil = http.createServer((_, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><a id="go" href="${server.url}/oauth2/sign_out">Free videos</a>`);
    });
    await new Promise((resolve) => evil.listen(0, 'localhost', resolve));
    try {
      await page.goto(`http://localhost:${evil.address().port}/`);
      await Promise.all([page.waitForURL((url) => url.origin === server.url), page.click('#go')]);
      assert.equal(await meStatus(page), 200, 'a cross-site GET signs nobody out');
      assert.equal(page.url(), `${server.url}/oauth2/sign_out`);
      await page.getByRole('button', { name: 'Sign out' }).waitFor();
    } finally {
      await new Promise((resolve) => evil.close(resolve));
    }
    // Confirming on that page signs out.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${server.url}/`);
    assert.equal(await meStatus(page), 401);
    await context.close();

    // So does the navigation's button.
    const again = await signedIn('val');
    await again.page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'Sign out' }).click();
    await again.page.waitForURL(`${server.url}/`);
    assert.equal(await meStatus(again.page), 401);
    await again.context.close();
  });
});
