// The console's shared pieces and simple pages: platform labels, badges, error and loading
// boxes, form fields, the webhooks list, the event types page, not found; the add / edit form is
// in form.js, a webhook's page in detail.js, the events pages in events.js. Each view renders into
// ctx.main and stops its timers when the route changes.

import { api, mapLimit } from './api.js';
import { h, nextId, replace, timeEl } from './dom.js';

export const PLATFORMS = [
  {
    value: 'slack',
    label: 'Slack',
    hint: 'Paste the Incoming Webhook URL of your Slack app (it starts with https://hooks.slack.com/).',
  },
  {
    value: 'mattermost',
    label: 'Mattermost',
    hint: 'Paste the incoming webhook URL from Mattermost (Integrations → Incoming Webhooks).',
  },
  {
    value: 'teams',
    label: 'Microsoft Teams',
    hint: 'Paste the URL of a Teams Workflows flow that starts with “When a Teams webhook request is received”.',
  },
  {
    value: 'trello',
    label: 'Trello',
    hint: 'Herald creates a card in a Trello list for every event. It needs the list ID and your Trello API key and token.',
  },
  {
    value: 'custom',
    label: 'Custom',
    hint: 'Your own endpoint receives each event as signed JSON (Standard Webhooks).',
  },
];

export function platformLabel(value) {
  return PLATFORMS.find((p) => p.value === value)?.label ?? value;
}

const STATUS = {
  succeeded: { label: 'Delivered', kind: 'ok' },
  failed: { label: 'Failed', kind: 'bad' },
  retrying: { label: 'Retrying', kind: 'warn' },
  pending: { label: 'Pending', kind: 'info' },
};

export function statusBadge(status) {
  const s = STATUS[status] ?? { label: status, kind: 'info' };
  return h('span', { class: `badge badge-${s.kind}` }, s.label);
}

export function enabledBadge(sub) {
  return sub.enabled
    ? h('span', { class: 'badge badge-ok' }, 'Enabled')
    : h('span', { class: 'badge badge-muted' }, 'Disabled');
}

/** A subscription's delivery health, in words (see the README's "When an endpoint fails"). */
export function healthFact(sub) {
  const hl = sub.health ?? {};
  const lastSuccess = hl.last_success_at ? ['Last success ', timeEl(hl.last_success_at), '.'] : 'No success recorded yet.';
  if (!sub.enabled) return h('span', null, h('span', { class: 'badge badge-muted' }, 'Not delivering'), ' ', lastSuccess);
  if (hl.state === 'healthy') return h('span', null, h('span', { class: 'badge badge-ok' }, 'Healthy'), ' ', lastSuccess);
  const failures = `${hl.consecutive_failures} ${hl.consecutive_failures === 1 ? 'failure' : 'failures'} in a row since `;
  const paused = hl.state === 'paused';
  return h('span', null,
    h('span', { class: paused ? 'badge badge-bad' : 'badge badge-warn' }, paused ? 'Paused' : 'Failing'),
    ' ', failures, timeEl(hl.failing_since), '. ',
    paused
      ? (hl.next_probe_at ? ['Herald holds its deliveries and sends one probe ', timeEl(hl.next_probe_at), '. '] : 'A probe is on its way. ')
      : '',
    hl.disables_at ? ['Disabled ', timeEl(hl.disables_at), ' unless a delivery succeeds. '] : '',
    lastSuccess);
}

export function subName(sub) {
  return sub.name || 'Untitled webhook';
}

// ---- errors in words a person understands ----------------------------------------------------

const FIELD_LABELS = {
  name: 'Name',
  platform: 'Platform',
  url: 'Callback URL',
  events: 'Events',
  description: 'Description',
  platform_options: 'Platform options',
  'platform_options.list_id': 'Trello list ID',
  'platform_options.api_key': 'Trello API key',
  'platform_options.token': 'Trello token',
  'platform_options.username': 'Bot name',
  'platform_options.icon_url': 'Icon URL',
  auth_token: 'Bearer token',
  headers: 'Extra headers',
  rate_limit_per_sec: 'Rate limit',
  since: 'Failed since',
  filter: 'Filter',
  template: 'Message template',
  schema: 'JSON Schema',
  example: 'Example data',
  enabled: 'Enabled',
};

export function sentence(text) {
  const t = text.trim();
  if (!t) return t;
  const first = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** The API's message, rewritten for people: field names become the labels they see. */
export function humanMessage(err) {
  const message = err?.message ?? String(err);
  const field = err?.field ?? null;
  const label = FIELD_LABELS[field] ?? field;
  if (err?.code === 'network' || err?.code === 'timeout') return message;
  if (err?.status === 401) return 'Herald did not accept your API key. Sign in again.';
  if (err?.status === 404) return 'Not found: it may have been deleted.';
  if (err?.status === 413) return 'That is more than Herald accepts in one request. Make it shorter.';
  if (err?.status === 429) return 'Too many requests right now. Wait a moment and try again.';
  if (err?.status >= 500) return 'Something went wrong inside Herald. Try again in a moment.';
  if (field === 'url') {
    if (/must start with https/i.test(message)) {
      return 'Use a web address that starts with https://, for example https://example.com/webhooks.';
    }
    if (/required|cannot be removed/i.test(message)) return 'Enter the callback URL: the address Herald sends events to.';
    if (/private|loopback|non-public/i.test(message)) {
      return 'This address is on a private or local network, which Herald may not send to. Use a public address.';
    }
    if (/user name or password/i.test(message)) {
      return 'Remove the user name and password from the address. Put a token under “More options” instead.';
    }
    if (/fragment/i.test(message)) return 'Remove the part from “#” on from the address.';
    if (/longer than|at most/i.test(message)) return 'This address is too long: at most 2048 characters.';
    if (/not valid/i.test(message)) {
      return 'This is not a complete web address. It should look like https://example.com/webhooks.';
    }
  }
  if (field === 'events') {
    if (/at least one|required/i.test(message)) return 'Choose at least one event.';
    if (/at most/i.test(message)) return sentence(message.replaceAll('`', ''));
  }
  if (field && field.startsWith('platform_options.')) {
    if (/needs/i.test(message)) return `Enter the ${label}: Trello needs it to create cards.`;
    if (/letters, digits/i.test(message)) {
      return field === 'platform_options.list_id'
        ? `The ${label} may contain only letters, digits, “-” and “_”.`
        : `The ${label} may contain only letters, digits, “-”, “.”, “_” and “~” (at most 256).`;
    }
  }
  if (field === 'rate_limit_per_sec') return 'Enter a whole number of deliveries per second, from 1 to 10000.';
  // Generic: `field` → “Label”.
  const tidied = message.replace(/`([^`]+)`/g, (_, name) => {
    const l = FIELD_LABELS[name] ?? FIELD_LABELS[`platform_options.${name}`];
    return l ? `“${l}”` : `“${name}”`;
  });
  return sentence(tidied);
}

// ---- small building blocks --------------------------------------------------------------------

export function heading(ctx, text) {
  ctx.setTitle(text);
  return h('h1', { tabindex: '-1' }, text);
}

export function focusHeading(ctx) {
  const h1 = ctx.main.querySelector('h1');
  if (h1 && !ctx.main.contains(document.activeElement)) h1.focus({ preventScroll: true });
}

export function loading(text) {
  return h('p', { class: 'loading', role: 'status' }, text);
}

export function errorBox(err, retry) {
  return h('div', { class: 'alert alert-bad', role: 'alert' },
    h('p', null, humanMessage(err)),
    retry ? h('button', { type: 'button', class: 'btn', onclick: retry }, 'Try again') : null);
}

/**
 * Runs a button's action once at a time. The button stays focusable while busy (aria-disabled
 * rather than disabled), so keyboard focus is not lost.
 */
export async function busy(button, fn) {
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  try {
    await fn();
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

/** Replaces `container`'s children, keeping keyboard focus on the control with the same key. */
export function swap(container, ...children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  const open = new Set([...container.querySelectorAll('details[open][data-key]')].map((d) => d.dataset.key));
  replace(container, ...children);
  for (const d of container.querySelectorAll('details[data-key]')) {
    if (open.has(d.dataset.key)) d.open = true;
  }
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}

/** A labelled control with its hint and the place for its error. */
export function field({ label, control, hint, key }) {
  const id = control.id || nextId('field');
  control.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  const wrap = h('div', { class: 'field', dataset: { field: key } },
    h('label', { for: id }, label), hintEl, control, error);
  return { wrap, control, error, hint: hintEl };
}

export function showError(f, message) {
  f.error.textContent = message;
  f.error.hidden = false;
  f.wrap.classList.add('has-error');
  const target = f.focusTarget ?? f.control;
  target.setAttribute('aria-invalid', 'true');
  target.setAttribute('aria-describedby', [f.hint?.id, f.error.id].filter(Boolean).join(' '));
}

export function clearError(f) {
  f.error.textContent = '';
  f.error.hidden = true;
  f.wrap.classList.remove('has-error');
  const target = f.focusTarget ?? f.control;
  target.removeAttribute('aria-invalid');
  if (f.hint) target.setAttribute('aria-describedby', f.hint.id);
  else target.removeAttribute('aria-describedby');
}

let eventTypesCache = null;
/** Drops the cached catalog (after it changed, or to show it fresh). */
export function forgetEventTypes() {
  eventTypesCache = null;
}

export async function eventTypes() {
  if (!eventTypesCache) {
    const answer = await api.eventTypes();
    eventTypesCache = answer.data;
  }
  return eventTypesCache;
}

/** Wildcard choices derived from the catalog: "All events" and "All <prefix> events". */
export function wildcards(types) {
  const prefixes = [];
  for (const t of types) {
    const prefix = t.name.split('.')[0];
    if (prefix !== 'webhook' && !prefixes.includes(prefix)) prefixes.push(prefix);
  }
  return [
    { pattern: '*', label: 'All events' },
    ...prefixes.map((p) => ({ pattern: `${p}.*`, label: `All ${p} events` })),
  ];
}

export function eventChips(events) {
  return h('ul', { class: 'chips', 'aria-label': 'Event types' },
    events.map((e) => h('li', null, h('code', null, e))));
}

// ---- webhooks list ------------------------------------------------------------------------------

export function listView(ctx) {
  const add = h('button', {
    type: 'button', class: 'btn btn-primary', onclick: () => ctx.navigate('#/webhooks/new'),
  }, 'Add webhook');
  const body = h('div', null, loading('Loading webhooks…'));
  replace(ctx.main,
    h('div', { class: 'page-head' }, heading(ctx, 'Webhooks'), add),
    h('p', { class: 'lead' },
      'A webhook sends the events you choose to another application: Slack, Mattermost, Microsoft Teams, Trello or your own endpoint.'),
    body);
  focusHeading(ctx);

  async function load() {
    replace(body, loading('Loading webhooks…'));
    let subs = [];
    try {
      let cursor = null;
      do {
        const page = await api.listSubscriptions(cursor);
        subs = subs.concat(page.data);
        cursor = page.next_cursor;
      } while (cursor && subs.length < 1000);
    } catch (err) {
      if (ctx.alive()) replace(body, errorBox(err, load));
      return;
    }
    if (!ctx.alive()) return;
    if (subs.length === 0) {
      replace(body, h('div', { class: 'empty card' },
        h('h2', null, 'No webhooks yet'),
        h('p', null, 'Click “Add webhook”, choose where to send events and which events, paste the callback URL, then “Save and test” to check that it works.')));
      return;
    }
    const lastCells = new Map();
    const list = h('ul', { class: 'webhooks', 'aria-label': 'Webhooks' }, subs.map((sub) => {
      const last = h('p', { class: 'last' }, h('span', { class: 'label' }, 'Last delivery: '), 'loading…');
      lastCells.set(sub.id, last);
      return h('li', { class: 'card webhook' },
        h('div', { class: 'webhook-head' },
          h('h2', null, h('a', { href: `#/webhooks/${encodeURIComponent(sub.id)}` }, subName(sub))),
          enabledBadge(sub)),
        h('dl', { class: 'facts' },
          h('div', null, h('dt', null, 'Platform'), h('dd', null, platformLabel(sub.platform))),
          h('div', null, h('dt', null, 'URL'), h('dd', { class: 'url' }, sub.url)),
          h('div', null, h('dt', null, 'Events'), h('dd', null, eventChips(sub.events)))),
        last);
    }));
    replace(body, list);
    await mapLimit(subs, 6, async (sub) => {
      const cell = lastCells.get(sub.id);
      try {
        const page = await api.deliveries(sub.id, { limit: 1 });
        if (!ctx.alive()) return;
        const d = page.data[0];
        if (!d) {
          replace(cell, h('span', { class: 'label' }, 'Last delivery: '), 'none yet');
          return;
        }
        replace(cell,
          h('span', { class: 'label' }, 'Last delivery: '),
          statusBadge(d.status), ' ',
          h('code', null, d.event_type),
          d.last_status_code ? ` · HTTP ${d.last_status_code}` : '',
          ' · ', timeEl(d.updated_at));
      } catch (err) {
        if (ctx.alive()) replace(cell, h('span', { class: 'label' }, 'Last delivery: '), humanMessage(err));
      }
    });
  }
  load();
}

export function attemptItem(a, key) {
  // 202: the receiver queued it (Teams Workflows does), which is all Herald can know.
  const answer = a.status_code
    ? `HTTP ${a.status_code}${a.result === 'accepted' ? ' · accepted' : ''}`
    : 'No HTTP answer';
  return h('li', { class: `attempt ${a.succeeded ? 'ok' : 'bad'}` },
    h('p', { class: 'attempt-line' },
      h('strong', null, `Attempt ${a.number}`),
      h('span', { class: `badge badge-${a.succeeded ? 'ok' : 'bad'}` }, answer),
      a.latency_ms !== null && a.latency_ms !== undefined ? h('span', null, `${a.latency_ms} ms`) : null,
      h('span', null, timeEl(a.started_at, { relative: false }))),
    // The error repeats the status when the receiver answered; show it only when it says more.
    a.error && a.error !== `HTTP ${a.status_code}` ? h('p', { class: 'error-text' }, sentence(a.error)) : null,
    a.response_excerpt
      ? h('details', { class: 'excerpt', dataset: { key: `ex-${key}-${a.number}` } },
        h('summary', { dataset: { key: `exs-${key}-${a.number}` } }, 'Response'),
        h('pre', null, a.response_excerpt))
      : null);
}

export function relTime(iso) {
  const t = timeEl(iso);
  t.dataset.relative = '';
  return t;
}

export function joinDots(items) {
  const out = [];
  items.forEach((item, i) => {
    if (i) out.push(' · ');
    out.push(item);
  });
  return out;
}

export function notFoundView(ctx) {
  replace(ctx.main,
    heading(ctx, 'Page not found'),
    h('p', null, 'There is no such page in the console. ', h('a', { href: '#/webhooks' }, 'Go to the webhooks.')));
  focusHeading(ctx);
}
