// What the browser test runs against: `herald dev` on 127.0.0.1, a receiver on 127.0.0.1 whose
// answers the test switches, and headless Chromium (Debian's package) driven by playwright-core.
// Everything here has a bounded wait and is stopped by `stop()` functions the test calls in
// `after`, also when a step failed.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

/** Polls `fn` until it stops throwing (returns its value) or `timeout` ms pass (throws its error). */
export async function eventually(fn, { timeout = 20000, interval = 150, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const message = lastError && lastError.message ? lastError.message : String(lastError);
      throw new Error(`timed out after ${timeout} ms waiting for ${what}: ${message}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** A webhook receiver on 127.0.0.1 that records every request and answers `status`. */
export async function startReceiver() {
  const received = [];
  const state = { status: 200 };
  const server = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= 1024 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {
        json = null;
      }
      received.push({ method: req.method, url: req.url, headers: req.headers, body, json, status: state.status });
      const ok = state.status >= 200 && state.status < 300;
      res.writeHead(state.status, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok, got it' : 'the receiver is failing on purpose');
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    answer(status) {
      state.status = status;
    },
    async stop() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Starts `herald dev` on 127.0.0.1 (a free port chosen by the OS) with a fresh data folder and a
 * known API key; resolves once it prints its URL and answers /healthz.
 */
export async function startHerald({ bin, logFile }) {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'herald-browser-data-'));
  const apiKey = `hk_browser_${randomBytes(18).toString('hex')}`;
  const child = spawn(bin, ['dev'], {
    env: {
      ...process.env,
      HERALD_ADDR: '127.0.0.1:0',
      HERALD_DATA_DIR: dataDir,
      HERALD_DEV_API_KEY: apiKey,
      HERALD_RETRY_SCHEDULE: '500ms,500ms,500ms',
      HERALD_ATTEMPT_TIMEOUT_MS: '5000',
      HERALD_LOG_FORMAT: 'pretty',
      NO_COLOR: '1',
      RUST_LOG: process.env.RUST_LOG ?? 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk) => {
    log += chunk.toString('utf8');
    if (log.length > 2_000_000) log = log.slice(-1_000_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  child.on('error', (err) => {
    exited = { code: null, signal: null, error: err };
  });
  const killAtExit = () => {
    if (exited === null) child.kill('SIGKILL');
  };
  process.on('exit', killAtExit);

  async function stop() {
    process.off('exit', killAtExit);
    if (exited === null) {
      child.kill('SIGTERM');
      const done = await Promise.race([
        new Promise((r) => child.once('exit', () => r(true))),
        new Promise((r) => setTimeout(() => r(false), 5000)),
      ]);
      if (!done && exited === null) child.kill('SIGKILL');
    }
    if (logFile) await fs.writeFile(logFile, log).catch(() => {});
    await fs.rm(dataDir, { recursive: true, force: true }).catch(() => {});
  }

  try {
    const url = await eventually(() => {
      if (exited) throw new Error(`herald exited early (${JSON.stringify(exited)}):\n${log.slice(-3000)}`);
      const m = log.match(/Herald is running at (http:\/\/127\.0\.0\.1:\d+)/);
      if (!m) throw new Error('no URL printed yet');
      return m[1];
    }, { timeout: 60000, interval: 100, what: 'herald dev to start' });
    await eventually(async () => {
      const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (!r.ok) throw new Error(`healthz answered ${r.status}`);
    }, { timeout: 20000, what: 'herald /healthz' });
    return { url, apiKey, stop, log: () => log };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Headless Debian Chromium with a fresh profile; every request off 127.0.0.1 is refused. */
export async function startBrowser({ executablePath }) {
  const userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'herald-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 60000,
  });
  context.setDefaultTimeout(15000);
  context.setDefaultNavigationTimeout(20000);
  const offHost = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' || url.protocol === 'data:') return route.continue();
    offHost.push(url.href);
    return route.abort();
  });
  return {
    context,
    offHost,
    async stop() {
      await Promise.race([context.close(), new Promise((r) => setTimeout(r, 10000))]).catch(() => {});
      await fs.rm(userDataDir, { recursive: true, force: true }).catch(() => {});
    },
  };
}

/** A client for Herald's API from Node (what a source application does). */
export function apiClient(base, key) {
  return async function call(method, p, body) {
    const r = await fetch(`${base}${p}`, {
      method,
      headers: {
        Authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(20000),
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : null, headers: r.headers };
  };
}
