// Signing in through an external OpenID Connect provider in a real browser, end to end against
// a certified provider (the npm `oidc-provider` package) on a loopback port: the gateway's
// sign-in goes to our login page, "Sign in with …" goes to the provider, its login and consent
// pages come back, and the gateway's authorization request resumes with the new account. Then
// the same provider account signs in again (same user), and the security page links and unlinks
// providers. Runs on SQLite, and also on PostgreSQL when TURTLEMEN_TEST_POSTGRES_URL is set (a
// fresh schema made with psql).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { launchBrowser } from './support/browser.js';
import { freePort, startServer } from './support/server.js';
import { startOidcProvider } from './support/oidc-provider.js';

const PASSWORD = 'correct horse battery staple';
const CLIENT_ID = 'turtlemen-broker-test';
const CLIENT_SECRET = 'broker test secret';

function stacks() {
  const out = [{ name: 'SQLite', env: () => ({}), cleanup: () => {} }];
  const pg = process.env.TURTLEMEN_TEST_POSTGRES_URL;
  if (pg) {
    const schema = `b_${randomUUID().replaceAll('-', '')}`;
    out.push({
      name: 'PostgreSQL',
      env: () => {
        execFileSync('psql', [pg, '-q', '-c', `CREATE SCHEMA ${schema}`]);
        const sep = pg.includes('?') ? '&' : '?';
        return { TURTLEMEN_DATABASE_URL: `${pg}${sep}options[search_path]=${schema}` };
      },
      cleanup: () => execFileSync('psql', [pg, '-q', '-c', `DROP SCHEMA IF EXISTS ${schema} CASCADE`]),
    });
  }
  return out;
}

/** Signs in at oidc-provider's development pages as `login` and consents. */
async function providerLogin(page, issuer, login) {
  await page.waitForURL((u) => u.href.startsWith(issuer));
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('anything');
  await page.locator('button[type="submit"]').click();
  // Consent to the scopes asked for.
  await page.locator('button[type="submit"]').click();
}

for (const stack of stacks()) {
  describe(`brokering an OpenID Connect provider in a browser (${stack.name})`, () => {
    let server;
    let op;
    let browser;

    before(async () => {
      const port = await freePort();
      op = await startOidcProvider({
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        redirectUris: [`http://127.0.0.1:${port}/auth/broker/op/callback`],
      });
      const config = [
        '[[identity_providers]]',
        'id = "op"',
        'kind = "oidc"',
        'display_name = "Olive Provider"',
        `client_id = "${CLIENT_ID}"`,
        `client_secret = "${CLIENT_SECRET}"`,
        `issuer = "${op.issuer}"`,
        '',
      ].join('\n');
      server = await startServer({ port, config, env: stack.env() });
      browser = await launchBrowser();
      const out = await server.cli(
        ['admin', 'create-user', '--username', 'ann', '--email', 'ann@example.org', '--password-stdin'],
        `${PASSWORD}\n`,
      );
      assert.equal(out.code, 0, out.stderr);
    });

    after(async () => {
      await browser?.close();
      if (server) assert.equal(await server.stop(), 0);
      await op?.stop();
      stack.cleanup();
    });

    test('the first login makes an account, the next one finds it, and the gateway resumes', async () => {
      const ids = [];
      for (let round = 0; round < 2; round += 1) {
        const context = await browser.newContext();
        const page = await context.newPage();
        const asked = `${server.url}/subscriptions?tab=new`;
        await page.goto(asked);
        await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
        await page.getByRole('button', { name: 'Sign in with Olive Provider' }).click();
        await providerLogin(page, op.issuer, 'olive');
        await page.waitForURL(asked);
        const me = await page.request.get(`${server.url}/api/v1/me`);
        assert.equal(me.status(), 200);
        const body = await me.json();
        assert.equal(body.username, 'olive');
        ids.push(body.id);
        await page.goto(`${server.url}/auth/account`);
        await page.getByRole('button', { name: 'Unlink Olive Provider' }).waitFor();
        await context.close();
      }
      assert.equal(ids[0], ids[1], 'the second login reuses the link');
    });

    test('the only way to sign in cannot be unlinked', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${server.url}/auth/login`);
      await page.getByRole('button', { name: 'Sign in with Olive Provider' }).click();
      await providerLogin(page, op.issuer, 'olive');
      await page.waitForURL((u) => u.pathname === '/auth/account');
      await page.getByRole('button', { name: 'Unlink Olive Provider' }).click();
      await page.getByRole('heading', { name: 'Keep one way to sign in' }).waitFor();
      await context.close();
    });

    test('a password account links and unlinks the provider on its security page', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${server.url}/auth/login`);
      await page.getByLabel('Username or email').fill('ann');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('heading', { name: 'Account security' }).waitFor();
      await page.getByRole('button', { name: 'Link Olive Provider' }).click();
      await providerLogin(page, op.issuer, 'ann-elsewhere');
      await page.waitForURL(`${server.url}/auth/account?done=linked`);
      await page.getByText('The provider is linked').waitFor();
      await page.getByText('ann-elsewhere@provider.example').waitFor();
      await page.getByRole('button', { name: 'Unlink Olive Provider' }).click();
      await page.waitForURL(`${server.url}/auth/account?done=unlinked`);
      assert.equal(await page.getByRole('button', { name: 'Unlink Olive Provider' }).count(), 0);
      const events = await page.locator('table.events').innerText();
      assert.match(events, /identity linked/);
      assert.match(events, /identity unlinked/);
      await context.close();
    });
  });
}
