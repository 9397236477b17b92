// Uploads with the tus reference client (tus-js-client, in Node) against a real server: an
// upload broken off halfway through a chunk is resumed from the offset the server reports, and
// the stored original is byte for byte the source (same SHA-256).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tus from 'tus-js-client';
import { launchBrowser } from './support/browser.js';
import { startServer } from './support/server.js';

const PASSWORD = 'correct horse battery staple';

/** Signs in through the gateway in a real browser; returns the session cookie header. */
async function sessionCookie(browser, server, username) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}/studio`);
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${server.url}/studio`);
  const cookies = await context.cookies();
  await context.close();
  return cookies.map((c) => `${c.name}=${c.value}`).join('; ');
}

/** Runs a tus-js-client upload to its end; resolves with its URL and the video id. */
function runUpload(options) {
  return new Promise((resolve, reject) => {
    let videoId = null;
    const upload = new tus.Upload(options.file, {
      endpoint: options.endpoint,
      uploadUrl: options.uploadUrl ?? null,
      chunkSize: options.chunkSize,
      headers: { Cookie: options.cookie },
      metadata: { filename: 'random.bin', title: 'Resumed' },
      retryDelays: [],
      storeFingerprintForResuming: false,
      onAfterResponse(req, res) {
        const id = res.getHeader('Video-Id');
        if (id) videoId = id;
      },
      onProgress(sent) {
        if (options.abortAfter && sent >= options.abortAfter) {
          upload.abort(false).then(() => resolve({ aborted: true, url: upload.url, videoId }));
          options.abortAfter = null;
        }
      },
      onSuccess() {
        resolve({ aborted: false, url: upload.url, videoId });
      },
      onError: reject,
    });
    upload.start();
  });
}

describe('tus uploads with the reference client', () => {
  let server;
  let browser;
  let cookie;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    const out = await server.cli(
      ['admin', 'create-user', '--username', 'ann', '--email', 'ann@example.org', '--password-stdin'],
      `${PASSWORD}\n`,
    );
    assert.equal(out.code, 0, out.stderr);
    cookie = await sessionCookie(browser, server, 'ann');
  });

  after(async () => {
    await browser?.close();
    if (server) assert.equal(await server.stop(), 0);
  });

  test('an upload broken off halfway resumes and the stored original is identical', async () => {
    const source = randomBytes(6 * 1024 * 1024 + 123);
    const endpoint = `${server.url}/api/v1/uploads`;
    const first = await runUpload({ file: source, endpoint, cookie, chunkSize: 4 * 1024 * 1024, abortAfter: 2 * 1024 * 1024 });
    assert.equal(first.aborted, true);
    assert.ok(first.url?.startsWith(endpoint), first.url);
    assert.ok(first.videoId, 'the creation response names the video');

    const head = await fetch(first.url, { method: 'HEAD', headers: { Cookie: cookie, 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.status, 200);
    const offset = Number(head.headers.get('upload-offset'));
    assert.ok(offset < source.length, `broken off before the end (${offset})`);

    // A new client, as after a reload: it asks for the offset and sends the rest.
    const second = await runUpload({ file: source, endpoint, cookie, chunkSize: 1024 * 1024, uploadUrl: first.url });
    assert.equal(second.aborted, false);
    const stored = await readFile(path.join(server.dataDir, 'media', 'videos', first.videoId, 'original'));
    assert.equal(stored.length, source.length);
    assert.equal(createHash('sha256').update(stored).digest('hex'), createHash('sha256').update(source).digest('hex'));
  });

  test('without a session nothing is created, and another user cannot resume an upload', async () => {
    const source = randomBytes(1000);
    const endpoint = `${server.url}/api/v1/uploads`;
    await assert.rejects(runUpload({ file: source, endpoint, cookie: '', chunkSize: 500 }), /401/);
    const started = await runUpload({ file: source, endpoint, cookie, chunkSize: 500, abortAfter: 500 });
    const out = await server.cli(
      ['admin', 'create-user', '--username', 'bob', '--email', 'bob@example.org', '--password-stdin'],
      `${PASSWORD}\n`,
    );
    assert.equal(out.code, 0, out.stderr);
    const bobCookie = await sessionCookie(browser, server, 'bob');
    const head = await fetch(started.url, { method: 'HEAD', headers: { Cookie: bobCookie, 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.status, 404);
  });
});
