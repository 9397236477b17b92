// Test support: launches Debian's Chromium through playwright-core, with nothing of its own
// reaching the network (no updates, sync or background requests).

import { chromium } from 'playwright-core';
import { until } from './wait.js';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Records what a page does: console errors, uncaught exceptions, every request, and the bytes
 * transferred (headers and bodies) once each request has finished.
 */
export function watchPage(page) {
  // `pending` holds the requests this record saw start: a request of the page before (still in
  // flight when the record began) finishing later must not count as one of ours.
  const record = { errors: [], requests: [], sizes: [], pending: new Set() };
  page.on('console', (msg) => {
    if (msg.type() === 'error') record.errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => record.errors.push(`exception: ${err.message}`));
  page.on('request', (req) => {
    record.requests.push(req.url());
    record.pending.add(req);
  });
  page.on('requestfinished', (req) => {
    if (!record.pending.delete(req)) return;
    // A page closed before its sizes arrive rejects them; kept as a rejection for whoever awaits
    // the sizes (the weight test), never left unhandled to fail an unrelated test.
    const sizes = req.sizes().then((s) => ({ url: req.url(), bytes: s.responseHeadersSize + s.responseBodySize }));
    sizes.catch(() => {});
    record.sizes.push(sizes);
  });
  page.on('requestfailed', (req) => {
    if (!record.pending.delete(req)) return;
    record.errors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`);
  });
  return record;
}

/**
 * Waits until every request the page started has finished or failed; resolves with the sizes.
 * The deadline is generous: a player keeps loading segments for a while, longer on a busy machine.
 */
export async function settled(record, { deadlineMs = 30_000 } = {}) {
  try {
    await until(() => record.pending.size === 0, { deadlineMs, what: 'the page\'s requests to finish' });
  } catch (err) {
    const open = [...record.pending].map((req) => req.url());
    throw new Error(`${err.message}; still open: ${open.join(', ')}`);
  }
  return Promise.all(record.sizes);
}

/** The password the browser tests give the accounts they make. */
export const PASSWORD = 'correct horse battery staple';

/** Fills and submits the sign-in form on `page` as `username`. */
export async function signInForm(page, username) {
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
