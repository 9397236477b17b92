// Test support: waiting for a condition, never for a fixed time.

import { setTimeout as delay } from 'node:timers/promises';

/** Calls `check` until it returns a truthy value (which it resolves with) or the deadline passes. */
export async function until(check, { deadlineMs = 10_000, intervalMs = 50, what = 'a condition' } = {}) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await delay(intervalMs);
  }
}
