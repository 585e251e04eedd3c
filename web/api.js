// Herald's public HTTP API, as the console uses it: fetch with `Authorization: Bearer <key>`.
// The key lives in sessionStorage only (this tab, until it is closed or the user signs out).

const KEY_NAME = 'herald.apiKey';

// The API sits beside the console: /console/api.js → /v1/… (also behind a path prefix).
const BASE = new URL('../', import.meta.url);

export const session = {
  get key() {
    try {
      return sessionStorage.getItem(KEY_NAME);
    } catch {
      return null;
    }
  },
  set(key) {
    sessionStorage.setItem(KEY_NAME, key);
  },
  clear() {
    try {
      sessionStorage.removeItem(KEY_NAME);
    } catch {
      // Storage unavailable: nothing was kept.
    }
  },
};

/** An error answer of the API (`{"error": {code, message, field}}`) or a failed request. */
export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** Called when the API answers 401 to a signed-in request (the key was revoked or is wrong). */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * One API call. `path` is like 'v1/subscriptions'. Returns the parsed JSON (null for 204).
 * Options: body (JSON), key (instead of the session's), timeoutMs.
 */
export async function call(method, path, { body, key, timeoutMs = 20000 } = {}) {
  const apiKey = key ?? session.key;
  const headers = { Accept: 'application/json' };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(new URL(path, BASE), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    if (err && err.name === 'TimeoutError') {
      throw new ApiError(0, 'timeout', 'Herald did not answer in time. Try again.');
    }
    throw new ApiError(0, 'network', 'Herald could not be reached. Check that it is running, then try again.');
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const e = (data && data.error) || {};
    const error = new ApiError(
      response.status,
      e.code || 'http_error',
      e.message || `Herald answered with HTTP ${response.status}.`,
      e.field || null,
    );
    if (response.status === 401 && key === undefined) onUnauthorized(error);
    throw error;
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  eventTypes: (key) => call('GET', 'v1/event-types', { key }),
  createEventType: (body) => call('POST', 'v1/event-types', { body }),
  deleteEventType: (name) => call('DELETE', `v1/event-types/${enc(name)}`),
  settings: () => call('GET', 'v1/settings'),
  updateSettings: (body) => call('PATCH', 'v1/settings', { body }),
  // What Herald would send for a subscription body and an event, without sending it.
  preview: (body) => call('POST', 'v1/subscriptions/preview', { body }),
  listSubscriptions: (cursor) =>
    call('GET', `v1/subscriptions?limit=100${cursor ? `&cursor=${enc(cursor)}` : ''}`),
  getSubscription: (id) => call('GET', `v1/subscriptions/${enc(id)}`),
  createSubscription: (body) => call('POST', 'v1/subscriptions', { body }),
  updateSubscription: (id, body) => call('PATCH', `v1/subscriptions/${enc(id)}`, { body }),
  deleteSubscription: (id) => call('DELETE', `v1/subscriptions/${enc(id)}`),
  getSecret: (id) => call('GET', `v1/subscriptions/${enc(id)}/secret`),
  rotateSecret: (id) => call('POST', `v1/subscriptions/${enc(id)}/secret/rotate`),
  // The test waits for the receiver (up to its per-attempt timeout), so allow longer.
  // With `eventType`, sends that type's example instead of a webhook.test event ("Send example").
  test: (id, eventType) => call('POST', `v1/subscriptions/${enc(id)}/test`, {
    body: eventType ? { event_type: eventType } : undefined, timeoutMs: 60000,
  }),
  deliveries: (id, { limit = 20, cursor } = {}) =>
    call('GET', `v1/subscriptions/${enc(id)}/deliveries?limit=${limit}${cursor ? `&cursor=${enc(cursor)}` : ''}`),
  // Delivers to a disabled webhook again; with `recover`, also queues again what failed while it was down.
  enable: (id, recover) =>
    call('POST', `v1/subscriptions/${enc(id)}/enable`, { body: recover ? { recover: true } : {} }),
  // One step of recovery: pass back `next_cursor` until it is null.
  recover: (id, since, cursor) =>
    call('POST', `v1/subscriptions/${enc(id)}/recover`, { body: cursor ? { since, cursor } : { since } }),
  delivery: (id) => call('GET', `v1/deliveries/${enc(id)}`),
  // Deliveries per hour of one webhook over `window` ('24h' or '7d').
  stats: (id, window) => call('GET', `v1/subscriptions/${enc(id)}/stats?window=${enc(window)}`),
  listEvents: ({ limit = 25, cursor, type } = {}) =>
    call('GET', `v1/events?limit=${limit}${type ? `&type=${enc(type)}` : ''}${cursor ? `&cursor=${enc(cursor)}` : ''}`),
  getEvent: (id) => call('GET', `v1/events/${enc(id)}`),
  retry: (id) => call('POST', `v1/deliveries/${enc(id)}/retry`),
};

/** Runs `fn` over `items` with at most `limit` calls in flight; results keep their order. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next;
      next += 1;
      try {
        results[i] = { ok: true, value: await fn(items[i], i) };
      } catch (error) {
        results[i] = { ok: false, error };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
