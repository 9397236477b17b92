// OpenID Connect interoperability: the auth service driven by `openid-client` (a certified
// relying-party library nobody here wrote) with the sign-in and consent pages clicked through
// in Debian's Chromium. Covers code + PKCE, ID token validation, userinfo, refresh rotation
// and reuse detection, a replayed code revoking its refresh token, introspection, revocation, single sign-on across clients, RP-initiated
// logout, the refusal to redirect to an unregistered redirect_uri, and API scopes: a token
// does at the API only what the user consented to, and the library reads our RFC 6750
// `insufficient_scope` challenge.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as client from 'openid-client';
import { launchBrowser } from './support/browser.js';
import { freePort, startServer } from './support/server.js';

const PASSWORD = 'correct horse battery staple';

/** A relying party's callback endpoint: answers every request with a small page. */
async function startCallback() {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>callback</title><p>back at the client');
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

describe('OpenID Connect provider with openid-client', () => {
  let server;
  let rp;
  let browser;
  let issuer;

  before(async () => {
    server = await startServer();
    rp = await startCallback();
    browser = await launchBrowser();
    issuer = new URL(`${server.url}/auth`);
    const user = await server.cli(['admin', 'create-user', '--username', 'ann', '--email', 'ann@example.org', '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(user.code, 0, user.stderr);
  });

  after(async () => {
    await browser?.close();
    await rp?.close();
    if (server) assert.equal(await server.stop(), 0);
  });

  async function register(args) {
    const out = await server.cli(['admin', 'create-client', ...args]);
    assert.equal(out.code, 0, out.stderr);
    return out.stdout.match(/client_secret: (\S+)/)?.[1];
  }

  async function discover(clientId, secret, auth) {
    return client.discovery(issuer, clientId, secret, auth, { execute: [client.allowInsecureRequests] });
  }

  async function authorizationUrl(config, extra = {}) {
    const verifier = client.randomPKCECodeVerifier();
    const params = {
      redirect_uri: `${rp.base}/cb`,
      scope: 'openid profile email offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: client.randomState(),
      nonce: client.randomNonce(),
      ...extra,
    };
    return { url: client.buildAuthorizationUrl(config, params), verifier, state: params.state, nonce: params.nonce };
  }

  const atCallback = (u) => u.href.startsWith(`${rp.base}/cb`);

  test('code + PKCE, refresh rotation, reuse detection, SSO, logout', async () => {
    const secret = await register([
      '--client-id', 'rp-confidential', '--name', 'Test App',
      '--redirect-uri', `${rp.base}/cb`, '--post-logout-redirect-uri', `${rp.base}/bye`,
    ]);
    assert.ok(secret, 'a confidential client gets a secret');
    const config = await discover('rp-confidential', secret, client.ClientSecretBasic(secret));
    assert.equal(config.serverMetadata().issuer, issuer.href);

    const context = await browser.newContext();
    const page = await context.newPage();

    // Sign in, then consent (a third-party client), then back at the client with a code.
    const first = await authorizationUrl(config);
    await page.goto(first.url.href);
    await page.getByLabel('Username or email').fill('ann');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: /Allow Test App/ }).waitFor();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(atCallback);

    const replayed = await client.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: first.verifier,
      expectedState: first.state,
      expectedNonce: first.nonce,
      idTokenExpected: true,
    });
    const claims = replayed.claims();
    assert.equal(claims.preferred_username, 'ann');
    assert.equal(claims.email, 'ann@example.org');
    assert.equal(claims.iss, issuer.href);
    assert.equal(claims.aud, 'rp-confidential');
    assert.ok(claims.auth_time);

    // The code is single-use; a replay revokes the refresh token its first use gave (RFC 6749
    // §4.1.2). The access token, a JWT, lives on until it expires.
    await assert.rejects(
      client.authorizationCodeGrant(config, new URL(page.url()), {
        pkceCodeVerifier: first.verifier, expectedState: first.state, expectedNonce: first.nonce,
      }),
      (e) => e.error === 'invalid_grant',
    );
    await assert.rejects(client.refreshTokenGrant(config, replayed.refresh_token), (e) => e.error === 'invalid_grant');

    // Signed in already, consent remembered: straight back with a new code.
    const next = await authorizationUrl(config);
    await page.goto(next.url.href);
    await page.waitForURL(atCallback);
    const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: next.verifier, expectedState: next.state, expectedNonce: next.nonce,
    });
    assert.equal(tokens.claims().sub, claims.sub);

    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.preferred_username, 'ann');

    const active = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(active.active, true);
    assert.equal(active.username, 'ann');

    // Refresh rotates; presenting the old token again revokes the whole family.
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
    assert.equal(refreshed.claims().sub, claims.sub);
    await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), (e) => e.error === 'invalid_grant');
    await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token), (e) => e.error === 'invalid_grant');
    assert.equal((await client.tokenIntrospection(config, refreshed.refresh_token)).active, false);

    // A second client: signed in already (no password), PKCE, public, client_secret none.
    await register(['--client-id', 'rp-public', '--public', '--name', 'Public App', '--redirect-uri', `${rp.base}/cb`]);
    const publicConfig = await discover('rp-public', undefined, client.None());
    const second = await authorizationUrl(publicConfig);
    await page.goto(second.url.href);
    await page.getByRole('heading', { name: /Allow Public App/ }).waitFor();
    assert.equal(await page.getByLabel('Password').count(), 0, 'no password asked');
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(atCallback);
    const publicTokens = await client.authorizationCodeGrant(publicConfig, new URL(page.url()), {
      pkceCodeVerifier: second.verifier, expectedState: second.state, expectedNonce: second.nonce,
    });
    assert.equal(publicTokens.claims().sub, claims.sub);

    // Consent is remembered: the next request goes straight back.
    const third = await authorizationUrl(config);
    await page.goto(third.url.href);
    await page.waitForURL(atCallback);
    const again = await client.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: third.verifier, expectedState: third.state, expectedNonce: third.nonce,
    });

    // Revocation (RFC 7009) of a live refresh token.
    await client.tokenRevocation(config, again.refresh_token);
    await assert.rejects(client.refreshTokenGrant(config, again.refresh_token), (e) => e.error === 'invalid_grant');

    // RP-initiated logout with an ID token hint ends the session and returns to the client.
    const logoutUrl = client.buildEndSessionUrl(config, {
      id_token_hint: again.id_token,
      post_logout_redirect_uri: `${rp.base}/bye`,
      state: 'bye-state',
    });
    await page.goto(logoutUrl.href);
    await page.waitForURL((u) => u.href.startsWith(`${rp.base}/bye`));
    assert.equal(new URL(page.url()).searchParams.get('state'), 'bye-state');

    // Signed out: prompt=none now says login_required.
    const silent = await authorizationUrl(config, { prompt: 'none' });
    await page.goto(silent.url.href);
    await page.waitForURL(atCallback);
    assert.equal(new URL(page.url()).searchParams.get('error'), 'login_required');
    assert.equal(new URL(page.url()).searchParams.get('iss'), issuer.href);
    await context.close();
  });

  test('a token does at the API only what the user allowed', async () => {
    const secret = await register(['--client-id', 'rp-scoped', '--name', 'Scoped App', '--redirect-uri', `${rp.base}/cb`]);
    const config = await discover('rp-scoped', secret, client.ClientSecretBasic(secret));
    const context = await browser.newContext();
    const page = await context.newPage();

    /** Asks for `scope`, allows on the consent page; returns the tokens and what was asked. */
    async function consentFor(scope, { signIn = false } = {}) {
      const request = await authorizationUrl(config, { scope });
      await page.goto(request.url.href);
      if (signIn) {
        await page.getByLabel('Username or email').fill('ann');
        await page.getByLabel('Password').fill(PASSWORD);
        await page.getByRole('button', { name: 'Sign in' }).click();
      }
      await page.getByRole('heading', { name: /Allow Scoped App/ }).waitFor();
      const asked = await page.locator('.scope-list li').allTextContents();
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL(atCallback);
      const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), {
        pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce,
      });
      return { tokens, asked };
    }
    const call = (token, method, path, body, headers) =>
      client.fetchProtectedResource(config, token, new URL(`/api/v1${path}`, server.url), method, body, headers);
    const json = () => new Headers({ 'content-type': 'application/json' });
    /** The library sees our 403 and parses its challenge: insufficient_scope, naming `scope`. */
    const refused = (promise, scope) => assert.rejects(promise, (e) => {
      assert.ok(e instanceof client.WWWAuthenticateChallengeError, String(e));
      assert.equal(e.response.status, 403);
      assert.equal(e.cause[0].scheme, 'bearer');
      assert.equal(e.cause[0].parameters.error, 'insufficient_scope');
      assert.equal(e.cause[0].parameters.scope, scope);
      return true;
    });

    // Only "know who you are": /me works, nothing else of the user's.
    const limited = await consentFor('openid', { signIn: true });
    assert.deepEqual(limited.asked, ['Know who you are on Turtlemen']);
    assert.equal(limited.tokens.scope, 'openid');
    assert.equal(limited.tokens.refresh_token, undefined, 'no refresh token without offline_access');
    const me = await call(limited.tokens.access_token, 'GET', '/me');
    assert.equal(me.status, 200);
    assert.equal((await me.json()).username, 'ann');

    // On the site itself (the gateway's first-party session, signed in already), the user
    // starts a private video (tus creation).
    await page.goto(`${server.url}/studio/videos`);
    await page.waitForURL((u) => u.href === `${server.url}/studio/videos`);
    const [status, id] = await page.evaluate(async (metadata) => {
      const res = await fetch('/api/v1/uploads', {
        method: 'POST',
        headers: { 'tus-resumable': '1.0.0', 'upload-length': '1000', 'upload-metadata': metadata },
      });
      return [res.status, res.headers.get('video-id')];
    }, `filename ${btoa('secret.mp4')},privacy ${btoa('private')}`);
    assert.equal(status, 201);

    const openidOnly = limited.tokens.access_token;
    await refused(call(openidOnly, 'GET', '/me/videos'), 'videos:read');
    await refused(call(openidOnly, 'PATCH', `/videos/${id}`, JSON.stringify({ title: 'pwned' }), json()), 'videos:write');
    await refused(call(openidOnly, 'PATCH', `/videos/${id}`, JSON.stringify({ privacy: 'public' }), json()), 'videos:write');
    await refused(call(openidOnly, 'DELETE', `/videos/${id}`), 'videos:write');

    // The user allows videos:write: the consent page says what that means.
    const writer = await consentFor('openid videos:write');
    assert.deepEqual(writer.asked, ['Know who you are on Turtlemen', 'Upload, edit and delete your videos']);
    const write = writer.tokens.access_token;
    const mine = await call(write, 'GET', '/me/videos');
    assert.equal(mine.status, 200);
    const listed = (await mine.json()).videos.find((v) => v.id === id);
    assert.equal(listed.title, 'secret', 'the refused changes changed nothing');
    assert.equal(listed.privacy, 'private');
    const patched = await call(write, 'PATCH', `/videos/${id}`, JSON.stringify({ title: 'renamed' }), json());
    assert.equal(patched.status, 200);
    assert.equal((await patched.json()).title, 'renamed');
    assert.equal((await call(write, 'DELETE', `/videos/${id}`)).status, 204);
    await context.close();
  });

  test('an unregistered redirect_uri is shown an error page, never redirected to', async () => {
    await register(['--client-id', 'rp-strict', '--public', '--redirect-uri', `${rp.base}/cb`]);
    const config = await discover('rp-strict', undefined, client.None());
    const context = await browser.newContext();
    const page = await context.newPage();
    for (const evil of ['https://evil.example/cb', `${rp.base}/cb/../other`, `${rp.base}/cb?x=1`, `${rp.base}/CB`]) {
      const { url } = await authorizationUrl(config, { redirect_uri: evil });
      const res = await page.goto(url.href);
      assert.equal(res.status(), 400, evil);
      assert.ok(page.url().startsWith(server.url), `stayed on the provider for ${evil}`);
      await page.getByRole('heading', { name: /cannot be completed/ }).waitFor();
    }
    await context.close();
  });
});
