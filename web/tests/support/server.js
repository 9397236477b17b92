// Test support: starts a real `turtlemen serve` for browser tests and stops it cleanly.
//
// Each server gets a free port and a fresh temporary data directory, is ready once `/healthz`
// answers, and must exit with code 0 on SIGTERM. Nothing here sleeps to synchronise: it polls
// for a condition until a deadline.

import { spawn } from 'node:child_process';
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { until } from './wait.js';

const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The `turtlemen` binary: `$TURTLEMEN_BIN`, else `../target/debug/turtlemen` from `web/`. */
export function turtlemenBin() {
  const fromEnv = process.env.TURTLEMEN_BIN;
  return fromEnv ? path.resolve(fromEnv) : path.resolve(WEB_DIR, '..', 'target', 'debug', 'turtlemen');
}

/** A TCP port that was free a moment ago: the OS picks one for a listener on port 0. */
export async function freePort() {
  const probe = net.createServer();
  await new Promise((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Runs the binary to completion with `input` on stdin. */
function runCli(bin, args, input, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...env, TURTLEMEN_LOG_LEVEL: 'warn' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    // A command that reads no input may exit before we write: its closed pipe is not an error.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** Runs `psql` against `url` with one SQL command; rejects with its stderr on failure. */
function psql(url, sql) {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql failed (${code}): ${stderr}`))));
  });
}

/**
 * The PostgreSQL and Redis URLs for the external stack, or `null` to skip it. With
 * `TURTLEMEN_TEST_REQUIRE_EXTERNAL=1` (the test script and CI) missing URLs are an error, so a
 * run can never pass by skipping.
 */
export function externalUrls() {
  const pg = process.env.TURTLEMEN_TEST_POSTGRES_URL;
  const redis = process.env.TURTLEMEN_TEST_REDIS_URL;
  if (pg && redis) return { pg, redis };
  if (process.env.TURTLEMEN_TEST_REQUIRE_EXTERNAL === '1') {
    throw new Error('TURTLEMEN_TEST_POSTGRES_URL and TURTLEMEN_TEST_REDIS_URL must be set');
  }
  return null;
}

/**
 * A fresh PostgreSQL schema for one server: its database URL (working inside the schema) and a
 * function that drops it.
 */
async function freshSchema(baseUrl) {
  const name = `t_web_${Math.random().toString(16).slice(2, 14)}`;
  await psql(baseUrl, `CREATE SCHEMA ${name}`);
  const sep = baseUrl.includes('?') ? '&' : '?';
  return { url: `${baseUrl}${sep}options[search_path]=${name}`, drop: () => psql(baseUrl, `DROP SCHEMA IF EXISTS ${name} CASCADE`) };
}

/** A page's budget before the player (DESIGN.md: under 50 KB), counted as transferred bytes. */
export const PAGE_BUDGET_BYTES = 50 * 1024;

/**
 * The stacks a browser suite runs on, as `[name, stack]`: SQLite + embedded sessions always,
 * PostgreSQL + Redis when their URLs are set (said once when they are not).
 */
export function testStacks() {
  const stacks = [['SQLite', 'embedded']];
  if (externalUrls()) stacks.push(['PostgreSQL', 'external']);
  else console.log('skipped the PostgreSQL + Redis run: set TURTLEMEN_TEST_POSTGRES_URL and TURTLEMEN_TEST_REDIS_URL');
  return stacks;
}

/**
 * Starts `turtlemen serve` and resolves once it is healthy.
 *
 * Options: `port` (else a free one), `config` (TOML text, written to a file in the data dir and
 * passed with `--config`), `env` (extra `TURTLEMEN_*` variables, e.g. a PostgreSQL
 * `TURTLEMEN_DATABASE_URL`), `stack: 'external'` (a fresh PostgreSQL schema and Redis, from
 * `externalUrls()`; the default is SQLite and the embedded session store).
 * @returns {Promise<{url: string, logs: () => string, stop: () => Promise<number|null>}>}
 */
export async function startServer({ readyDeadlineMs = 30_000, port: wantedPort, config, env: extraEnv = {}, stack = 'embedded' } = {}) {
  const bin = turtlemenBin();
  try {
    await access(bin, constants.X_OK);
  } catch {
    throw new Error(`no turtlemen binary at ${bin}: run \`cargo build\` first or set TURTLEMEN_BIN`);
  }

  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'turtlemen-web-test-'));
  const port = wantedPort ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;

  // The server reads only what the test gives it: no TURTLEMEN_* setting leaks in from the shell.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TURTLEMEN_')));
  env.NO_COLOR = '1';
  // Tests name their admins (`--admin`); the first-account rule has its own tests.
  env.TURTLEMEN_FIRST_USER_ADMIN = 'false';
  // Every page fresh, so a test sees its own changes at once (the gateway's page cache has its
  // own tests: tests/it/page_cache.rs).
  env.TURTLEMEN_PUBLIC_PAGE_MAX_AGE_SECS = '0';
  let schema = null;
  if (stack === 'external') {
    const ext = externalUrls();
    if (!ext) throw new Error('the external stack is not configured');
    schema = await freshSchema(ext.pg);
    env.TURTLEMEN_DATABASE_URL = schema.url;
    env.TURTLEMEN_SESSION_URL = ext.redis;
  }
  Object.assign(env, extraEnv);
  const cleanup = async () => {
    await rm(dataDir, { recursive: true, force: true });
    await schema?.drop().catch(() => {});
  };
  const configArgs = [];
  if (config !== undefined) {
    const file = path.join(dataDir, 'config.toml');
    await writeFile(file, config, { mode: 0o600 });
    configArgs.push('--config', file);
  }
  const child = spawn(bin, [...configArgs, 'serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
    cwd: dataDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let output = '';
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);

  let exit = null;
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });

  try {
    await until(
      async () => {
        if (exit) throw new Error(`turtlemen exited early (${JSON.stringify(exit)}):\n${output}`);
        try {
          const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
          return res.ok;
        } catch {
          return false;
        }
      },
      { deadlineMs: readyDeadlineMs, what: `${url}/healthz` },
    );
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    await cleanup();
    throw e;
  }

  return {
    url,
    dataDir,
    /** The server's process id (benches read its CPU time and memory from /proc). */
    pid: child.pid,
    logs: () => output,
    /** Runs `turtlemen ARGS` against this server's data dir; resolves with {code, stdout, stderr}. */
    cli: (args, input = '') => runCli(bin, [...args, '--data-dir', dataDir], input, env),
    /** Sends SIGTERM and resolves with the exit code (SIGKILL and throws if it hangs). */
    async stop({ deadlineMs = 15_000 } = {}) {
      if (!exit) child.kill('SIGTERM');
      const cancel = new AbortController();
      const timer = delay(deadlineMs, 'timeout', { signal: cancel.signal }).catch(() => 'cancelled');
      const result = await Promise.race([exited, timer]);
      cancel.abort();
      if (result === 'timeout') {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`turtlemen did not stop within ${deadlineMs} ms of SIGTERM:\n${output}`);
      }
      await cleanup();
      return result.code;
    },
  };
}

/** Creates accounts with `turtlemen admin create-user`: `users` are `[name, isAdmin]` pairs. */
export async function createUsers(server, users, password) {
  for (const [user, admin] of users) {
    const args = ['admin', 'create-user', '--username', user, '--email', `${user}@example.org`, '--password-stdin'];
    if (admin) args.push('--admin');
    const out = await server.cli(args, `${password}\n`);
    if (out.code !== 0) throw new Error(`create-user ${user} failed: ${out.stderr}`);
  }
}

/**
 * Uploads `bytes` as a public video titled `title` from the signed-in `page`'s session (the
 * bytes in the tus creation request); its watch URL. Not processed yet: tests wait for that.
 */
export async function uploadBytes(server, page, title, bytes, filename = 'clip.mp4') {
  const meta = [['filename', filename], ['title', title], ['privacy', 'public']]
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',');
  const created = await page.request.post(`${server.url}/api/v1/uploads`, {
    headers: { 'tus-resumable': '1.0.0', 'upload-length': String(bytes.length), 'upload-metadata': meta,
      'content-type': 'application/offset+octet-stream' },
    data: bytes,
  });
  if (created.status() !== 201) throw new Error(`upload failed: ${created.status()} ${await created.text()}`);
  return `${server.url}/videos/${created.headers()['video-id']}`;
}
