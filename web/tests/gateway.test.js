// Signing in through the gateway in a real browser: a page that needs an account sends the
// visitor to the sign-in form, and after signing in they land back on the page they asked for,
// with their identity reaching the API.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser } from './support/browser.js';
import { startServer } from './support/server.js';

const PASSWORD = 'correct horse battery staple';

describe('the gateway in a browser', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    const out = await server.cli(['admin', 'create-user', '--username', 'ann', '--email', 'ann@example.org', '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(out.code, 0, out.stderr);
  });

  after(async () => {
    await browser?.close();
    if (server) assert.equal(await server.stop(), 0);
  });

  test('signing in lands back on the page asked for', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const asked = `${server.url}/subscriptions?tab=new`;
    await page.goto(asked);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.ok(page.url().startsWith(`${server.url}/auth/login`), page.url());

    await page.getByLabel('Username or email').fill('ann');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(asked);

    const me = await page.request.get(`${server.url}/api/v1/me`);
    assert.equal(me.status(), 200);
    assert.equal((await me.json()).username, 'ann');

    // The session cookie is opaque (a 256-bit id and its HMAC, base64url), HttpOnly and
    // SameSite=Lax.
    const cookie = (await context.cookies()).find((c) => c.name === 'turtlemen_session');
    assert.ok(cookie, 'a session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.match(cookie.value, /^[A-Za-z0-9_-]{86}$/);

    // Signing out (the navigation's form, which posts the session's token) ends it.
    await page.goto(`${server.url}/`);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${server.url}/`);
    assert.equal((await page.request.get(`${server.url}/api/v1/me`)).status(), 401);
    await context.close();
  });

  test('the Sign in link on the home page comes back home', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(server.url);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByLabel('Username or email').fill('ann@example.org');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${server.url}/`);
    await context.close();
  });
});
