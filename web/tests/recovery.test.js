// Account recovery in a real browser with JavaScript turned off: "Forgot password?" from the
// sign-in page, the link from the mail (read from the outbox folder, the default when no SMTP
// server is set), a new password, and signing in with it; registration ends on "check your
// email" and the link in that mail confirms the address.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { launchBrowser } from './support/browser.js';
import { startServer } from './support/server.js';
import { until } from './support/wait.js';

const PASSWORD = 'correct horse battery staple';

/** The link to `route` in the newest message to `to` in the outbox, once it is there. */
async function linkFromMail(server, to, route) {
  return until(
    async () => {
      let names = [];
      try {
        names = (await readdir(path.join(server.dataDir, 'outbox'))).filter((n) => n.endsWith('.eml')).sort().reverse();
      } catch {
        return null;
      }
      for (const name of names) {
        const text = (await readFile(path.join(server.dataDir, 'outbox', name), 'utf8')).replace(/=\r?\n/g, '').replace(/=3D/g, '=');
        const match = text.includes(`To: ${to}`) && text.match(new RegExp(`(http\\S*${route}\\?token=[A-Za-z0-9_-]+)`));
        if (match) return match[1];
      }
      return null;
    },
    { what: `a mail to ${to}` },
  );
}

describe('account recovery without JavaScript', () => {
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

  test('forgot password, the mailed link, a new password, signed in', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${server.url}/auth/login`);
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
    await page.getByLabel('Username or email').fill('ann@example.org');
    await page.getByRole('button', { name: 'Send the link' }).click();
    await page.getByText('If an account matches, we sent a link').waitFor();

    const link = await linkFromMail(server, 'ann@example.org', '/auth/reset-password');
    await page.goto(link);
    await page.getByLabel('New password', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Set the new password' }).click();
    await page.locator('#new_password-error').waitFor();
    await page.getByLabel('New password', { exact: true }).fill('a brand new passphrase');
    await page.getByRole('button', { name: 'Set the new password' }).click();
    await page.getByRole('heading', { name: 'Your password is changed' }).waitFor();

    await page.locator('#main').getByRole('link', { name: 'Sign in' }).click();
    await page.getByLabel('Username or email').fill('ann');
    await page.getByLabel('Password').fill('a brand new passphrase');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Account security' }).waitFor();
    await context.close();
  });

  test('without SMTP, registration signs in at once; the link in the outbox confirms the address', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${server.url}/auth/register`);
    await page.getByLabel('Username').fill('bea');
    await page.getByLabel('Email').fill('bea@example.org');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    // No "check your email" that no mail would answer: the new account is signed in.
    await page.goto(`${server.url}/auth/account`);
    await page.locator('#email-status', { hasText: /not confirmed yet/ }).waitFor();

    const link = await linkFromMail(server, 'bea@example.org', '/auth/verify-email');
    await page.goto(link);
    await page.getByRole('heading', { name: 'Email address confirmed' }).waitFor();
    await page.goto(`${server.url}/auth/account`);
    await page.locator('#email-status', { hasText: /— confirmed\./ }).waitFor();
    await context.close();
  });
});
