// The console's pages: webhooks list, add/edit form, webhook detail (secret, tests, delivery
// health from health.js, delivery log), event types; and the small building blocks events.js
// uses. Each view renders into ctx.main and stops its timers when the route changes.

import { api, mapLimit } from './api.js';
import { healthPanel } from './health.js';
import {
  h, localTime, nextId, relativeTime, replace, timeEl, toLocalInputValue,
} from './dom.js';

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

function enabledBadge(sub) {
  return sub.enabled
    ? h('span', { class: 'badge badge-ok' }, 'Enabled')
    : h('span', { class: 'badge badge-muted' }, 'Disabled');
}

/** A subscription's delivery health, in words (see the README's "When an endpoint fails"). */
function healthFact(sub) {
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
async function busy(button, fn) {
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  try {
    await fn();
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

/** Replaces `container`'s children, keeping keyboard focus on the control with the same key. */
function swap(container, ...children) {
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
function field({ label, control, hint, key }) {
  const id = control.id || nextId('field');
  control.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  const wrap = h('div', { class: 'field', dataset: { field: key } },
    h('label', { for: id }, label), hintEl, control, error);
  return { wrap, control, error, hint: hintEl };
}

function showError(f, message) {
  f.error.textContent = message;
  f.error.hidden = false;
  f.wrap.classList.add('has-error');
  const target = f.focusTarget ?? f.control;
  target.setAttribute('aria-invalid', 'true');
  target.setAttribute('aria-describedby', [f.hint?.id, f.error.id].filter(Boolean).join(' '));
}

function clearError(f) {
  f.error.textContent = '';
  f.error.hidden = true;
  f.wrap.classList.remove('has-error');
  const target = f.focusTarget ?? f.control;
  target.removeAttribute('aria-invalid');
  if (f.hint) target.setAttribute('aria-describedby', f.hint.id);
  else target.removeAttribute('aria-describedby');
}

let eventTypesCache = null;
export async function eventTypes() {
  if (!eventTypesCache) {
    const answer = await api.eventTypes();
    eventTypesCache = answer.data;
  }
  return eventTypesCache;
}

/** Wildcard choices derived from the catalog: "All events" and "All <prefix> events". */
function wildcards(types) {
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

function eventChips(events) {
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

// ---- add / edit ---------------------------------------------------------------------------------

/** Results of "Save and test", shown on the detail page it leads to. */
const flash = new Map();

export async function formView(ctx, id) {
  const editing = Boolean(id);
  const title = editing ? 'Edit webhook' : 'Add webhook';
  const body = h('div', null, loading('Loading…'));
  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: editing ? `#/webhooks/${encodeURIComponent(id)}` : '#/webhooks' },
      editing ? '← Back to the webhook' : '← Webhooks')),
    heading(ctx, title),
    body);
  focusHeading(ctx);

  let types;
  let sub = null;
  try {
    [types, sub] = await Promise.all([eventTypes(), editing ? api.getSubscription(id) : null]);
  } catch (err) {
    if (ctx.alive()) replace(body, errorBox(err, () => formView(ctx, id)));
    return;
  }
  if (!ctx.alive()) return;
  replace(body, buildForm(ctx, types, sub));
}

function buildForm(ctx, types, sub) {
  const editing = Boolean(sub);
  const fields = {};
  const summary = h('div', { class: 'alert alert-bad', role: 'alert', tabindex: '-1', hidden: true });

  fields.name = field({
    label: 'Name',
    key: 'name',
    hint: 'So you can tell your webhooks apart, for example “Docs → #releases”.',
    control: h('input', { type: 'text', name: 'name', value: sub?.name ?? '', maxlength: '200', autocomplete: 'off' }),
  });

  const platform = h('select', { name: 'platform' },
    PLATFORMS.map((p) => h('option', { value: p.value, selected: (sub?.platform ?? 'slack') === p.value }, p.label)));
  fields.platform = field({ label: 'Platform', key: 'platform', control: platform, hint: ' ' });

  // Events: wildcards, then the catalog, then any pattern of this webhook the catalog lacks.
  const chosen = new Set(sub?.events ?? []);
  const known = new Set();
  const checkbox = (value, label, description) => {
    known.add(value);
    const cid = nextId('ev');
    const input = h('input', { type: 'checkbox', id: cid, name: 'events', value, checked: chosen.has(value) });
    const desc = description ? h('span', { class: 'hint', id: `${cid}-d` }, description) : null;
    if (desc) input.setAttribute('aria-describedby', desc.id);
    return h('div', { class: 'check' }, input, h('label', { for: cid }, label), desc);
  };
  const wild = wildcards(types).map((w) => checkbox(w.pattern, w.label, w.pattern === '*' ? 'Every event, including new types.' : `${w.pattern}`));
  // webhook.test is left out: "Save and test" and "Send test event" reach the webhook anyway.
  const catalog = types.filter((t) => t.name !== 'webhook.test' || chosen.has(t.name))
    .map((t) => checkbox(t.name, t.name, t.description));
  const extra = [...chosen].filter((e) => !known.has(e)).map((e) => checkbox(e, e, 'Chosen earlier'));
  const eventsError = h('p', { class: 'field-error', id: 'events-error', hidden: true });
  const eventsHint = h('p', { class: 'hint', id: 'events-hint' }, 'Tick every event that should trigger this webhook.');
  const fieldset = h('fieldset', { class: 'field events', 'aria-describedby': 'events-hint', tabindex: '-1' },
    h('legend', null, 'Events'),
    eventsHint,
    h('div', { class: 'check-group' }, h('p', { class: 'group-title' }, 'Groups'), wild),
    h('div', { class: 'check-group' }, h('p', { class: 'group-title' }, 'Event types'), catalog, extra),
    eventsError);
  fields.events = { wrap: fieldset, control: fieldset, error: eventsError, hint: eventsHint };

  fields.url = field({
    label: 'Callback URL',
    key: 'url',
    hint: 'The address Herald sends the events to.',
    control: h('input', {
      type: 'url', name: 'url', inputmode: 'url', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'https://example.com/webhooks/herald',
      value: sub && sub.platform !== 'trello' ? sub.url : '',
    }),
  });

  // Trello.
  const trelloSaved = sub?.platform === 'trello';
  const keepHint = trelloSaved ? ' Leave empty to keep the saved one.' : '';
  fields['platform_options.list_id'] = field({
    label: 'Trello list ID',
    key: 'platform_options.list_id',
    hint: 'The ID of the list that gets a new card for each event (add .json to the board’s address to see the list IDs).',
    control: h('input', { type: 'text', name: 'list_id', autocomplete: 'off', spellcheck: 'false', value: trelloSaved ? sub.platform_options.list_id ?? '' : '' }),
  });
  fields['platform_options.api_key'] = field({
    label: 'Trello API key',
    key: 'platform_options.api_key',
    hint: `From your Trello Power-Up admin page.${keepHint}`,
    control: h('input', { type: 'password', name: 'api_key', autocomplete: 'off', spellcheck: 'false' }),
  });
  fields['platform_options.token'] = field({
    label: 'Trello token',
    key: 'platform_options.token',
    hint: `A token that may write to the board. It is stored by Herald and never shown again.${keepHint}`,
    control: h('input', { type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false' }),
  });
  const trelloBox = h('div', { class: 'platform-options' },
    fields['platform_options.list_id'].wrap, fields['platform_options.api_key'].wrap, fields['platform_options.token'].wrap);

  // Mattermost.
  const mm = sub?.platform === 'mattermost' ? sub.platform_options : {};
  fields['platform_options.username'] = field({
    label: 'Bot name',
    key: 'platform_options.username',
    hint: 'Optional: the name the messages are posted under.',
    control: h('input', { type: 'text', name: 'username', autocomplete: 'off', value: mm.username ?? '' }),
  });
  fields['platform_options.icon_url'] = field({
    label: 'Icon URL',
    key: 'platform_options.icon_url',
    hint: 'Optional: the picture shown next to the messages.',
    control: h('input', { type: 'url', name: 'icon_url', autocomplete: 'off', value: mm.icon_url ?? '' }),
  });
  const mattermostBox = h('div', { class: 'platform-options' },
    fields['platform_options.username'].wrap, fields['platform_options.icon_url'].wrap);

  // More options.
  fields.description = field({
    label: 'Description',
    key: 'description',
    hint: 'Optional notes for your team.',
    control: h('textarea', { name: 'description', rows: '2', maxlength: '2000' }, sub?.description ?? ''),
  });
  fields.auth_token = field({
    label: 'Bearer token',
    key: 'auth_token',
    hint: sub?.auth_token_set
      ? 'A token is saved and sent as “Authorization: Bearer …”. Type a new one to replace it.'
      : 'Optional: sent to your endpoint as “Authorization: Bearer …”.',
    control: h('input', { type: 'password', name: 'auth_token', autocomplete: 'off', spellcheck: 'false' }),
  });
  const removeToken = sub?.auth_token_set
    ? h('div', { class: 'check' },
      h('input', { type: 'checkbox', id: 'remove-token', name: 'remove_token' }),
      h('label', { for: 'remove-token' }, 'Remove the saved bearer token'))
    : null;
  const headerText = Object.entries(sub?.headers ?? {}).map(([k, v]) => `${k}: ${v}`).join('\n');
  fields.headers = field({
    label: 'Extra headers',
    key: 'headers',
    hint: 'Optional: one per line, as Name: value.',
    control: h('textarea', { name: 'headers', rows: '3', spellcheck: 'false', class: 'mono' }, headerText),
  });
  fields.rate_limit_per_sec = field({
    label: 'Rate limit',
    key: 'rate_limit_per_sec',
    hint: 'Optional: at most this many deliveries per second to this endpoint.',
    control: h('input', {
      type: 'number', name: 'rate_limit_per_sec', min: '1', max: '10000', step: '1', inputmode: 'numeric',
      value: sub?.rate_limit_per_sec ?? '',
    }),
  });
  const more = h('details', { class: 'more', open: Boolean(sub && (sub.description || sub.auth_token_set || headerText || sub.rate_limit_per_sec)) },
    h('summary', null, 'More options'),
    fields.description.wrap, fields.auth_token.wrap, removeToken, fields.headers.wrap, fields.rate_limit_per_sec.wrap);

  const save = h('button', { type: 'submit', class: 'btn', value: 'save' }, 'Save');
  const saveTest = h('button', { type: 'submit', class: 'btn btn-primary', value: 'test' }, 'Save and test');
  const progress = h('p', { class: 'progress', role: 'status' });
  const cancel = h('a', { class: 'btn btn-link', href: editing ? `#/webhooks/${encodeURIComponent(sub.id)}` : '#/webhooks' }, 'Cancel');

  const form = h('form', { class: 'card webhook-form', novalidate: true },
    summary,
    fields.name.wrap,
    fields.platform.wrap,
    trelloBox,
    mattermostBox,
    fields.url.wrap,
    fieldset,
    more,
    h('div', { class: 'actions' }, saveTest, save, cancel),
    progress);

  function showPlatform() {
    const p = platform.value;
    trelloBox.hidden = p !== 'trello';
    mattermostBox.hidden = p !== 'mattermost';
    fields.url.wrap.hidden = p === 'trello';
    fields.platform.hint.textContent = PLATFORMS.find((x) => x.value === p)?.hint ?? '';
  }
  platform.addEventListener('change', showPlatform);
  showPlatform();

  function clearAll() {
    summary.hidden = true;
    replace(summary);
    for (const f of Object.values(fields)) clearError(f);
  }

  /** Shows an error beside its field (or at the top) and moves focus there. */
  function showApiError(err) {
    const f = err.field ? fields[err.field] ?? (err.field.startsWith('platform_options') ? fields.platform : null) : null;
    const message = humanMessage(err);
    if (f && !f.wrap.hidden && !f.wrap.closest('[hidden]')) {
      if (f.wrap.closest('details')) f.wrap.closest('details').open = true;
      showError(f, message);
      replace(summary, h('p', null, 'The webhook was not saved. Fix the field marked below.'));
      summary.hidden = false;
      (f.focusTarget ?? f.control).focus();
    } else {
      replace(summary, h('p', null, `The webhook was not saved. ${message}`));
      summary.hidden = false;
      summary.focus();
    }
  }

  function collect() {
    const p = platform.value;
    const body = {};
    const name = fields.name.control.value.trim();
    if (editing) body.name = name || null;
    else if (name) body.name = name;
    body.platform = p;
    body.events = [...fieldset.querySelectorAll('input[name="events"]:checked')].map((i) => i.value);
    const url = fields.url.control.value.trim();
    if (p === 'trello') {
      if (editing) body.url = null;
    } else {
      body.url = url;
    }
    if (p === 'trello') {
      const options = {
        list_id: fields['platform_options.list_id'].control.value.trim(),
        api_key: fields['platform_options.api_key'].control.value.trim(),
        token: fields['platform_options.token'].control.value.trim(),
      };
      if (trelloSaved && !options.api_key && !options.token) {
        if (options.list_id !== (sub.platform_options.list_id ?? '')) {
          return { error: { field: 'platform_options.api_key', message: 'Enter the Trello API key and token again to change the list.' } };
        }
        // Same list and no new credentials: keep the saved options.
      } else {
        body.platform_options = options;
      }
    } else if (p === 'mattermost') {
      const options = {};
      const username = fields['platform_options.username'].control.value.trim();
      const icon = fields['platform_options.icon_url'].control.value.trim();
      if (username) options.username = username;
      if (icon) options.icon_url = icon;
      if (editing || Object.keys(options).length) body.platform_options = options;
    }
    const description = fields.description.control.value.trim();
    if (editing) body.description = description || null;
    else if (description) body.description = description;
    const token = fields.auth_token.control.value.trim();
    if (token) body.auth_token = token;
    else if (removeToken && removeToken.querySelector('input').checked) body.auth_token = null;
    const headers = {};
    const lines = fields.headers.control.value.split('\n').map((l) => l.trim()).filter(Boolean);
    for (const line of lines) {
      const at = line.indexOf(':');
      if (at <= 0) {
        return { error: { field: 'headers', message: `Write each header as Name: value, one per line (“${line.slice(0, 40)}” is not).` } };
      }
      headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    if (editing || lines.length) body.headers = headers;
    const rate = fields.rate_limit_per_sec.control.value.trim();
    if (rate) {
      const n = Number(rate);
      body.rate_limit_per_sec = Number.isFinite(n) ? n : rate;
    } else if (editing) {
      body.rate_limit_per_sec = null;
    }
    return { body };
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const withTest = e.submitter === saveTest;
    clearAll();
    const { body, error } = collect();
    if (error) {
      const f = fields[error.field];
      if (f.wrap.closest('details')) f.wrap.closest('details').open = true;
      showError(f, error.message);
      replace(summary, h('p', null, 'The webhook was not saved. Fix the field marked below.'));
      summary.hidden = false;
      f.control.focus();
      return;
    }
    save.disabled = true;
    saveTest.disabled = true;
    progress.textContent = 'Saving…';
    let saved;
    try {
      saved = editing ? await api.updateSubscription(sub.id, body) : await api.createSubscription(body);
    } catch (err) {
      if (!ctx.alive()) return;
      save.disabled = false;
      saveTest.disabled = false;
      progress.textContent = '';
      showApiError(err);
      return;
    }
    if (!ctx.alive()) return;
    if (withTest) {
      progress.textContent = 'Saved. Sending a test event…';
      try {
        flash.set(saved.id, { test: await api.test(saved.id) });
      } catch (err) {
        flash.set(saved.id, { testError: err });
      }
      if (!ctx.alive()) return;
    } else {
      ctx.toast(editing ? 'Changes saved.' : 'Webhook added.', 'info', true);
    }
    ctx.navigate(`#/webhooks/${encodeURIComponent(saved.id)}`);
  });

  return form;
}

// ---- webhook detail -----------------------------------------------------------------------------

function testResult(result, error) {
  if (error) {
    return h('div', { class: 'alert alert-bad test-result' },
      h('h2', null, 'The test could not be sent'),
      h('p', null, humanMessage(error)));
  }
  const facts = [
    result.status ? `HTTP ${result.status}` : 'No HTTP answer',
    result.latency_ms !== null && result.latency_ms !== undefined ? `${result.latency_ms} ms` : null,
  ].filter(Boolean).join(' · ');
  const excerpt = result.response_excerpt
    ? h('details', { class: 'excerpt' }, h('summary', null, 'What the receiver answered'), h('pre', null, result.response_excerpt))
    : null;
  if (result.delivered) {
    return h('div', { class: 'alert alert-ok test-result' },
      h('h2', null, 'Test delivery arrived'),
      h('p', null, `The receiver answered ${facts}.`),
      excerpt);
  }
  return h('div', { class: 'alert alert-bad test-result' },
    h('h2', null, 'The test delivery did not arrive'),
    h('p', null, facts),
    result.error ? h('p', null, sentence(result.error)) : null,
    h('p', null, 'Check the callback URL and that the receiver answers with a 2xx status, then send another test.'),
    excerpt);
}

export async function detailView(ctx, id) {
  const enc = encodeURIComponent(id);
  const title = h('h1', { tabindex: '-1' }, 'Webhook');
  ctx.setTitle('Webhook');
  const results = h('div', { class: 'results', role: 'status' });
  const summary = h('div', null, loading('Loading the webhook…'));
  const toolbar = h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Webhook actions' });
  const secretBox = h('section', { class: 'card secret', 'aria-labelledby': 'secret-title' });
  const logBox = h('div', { class: 'log' }, loading('Loading deliveries…'));
  const recoverForm = recoverSection(ctx, id, () => refreshLog());
  const moreButton = h('button', { type: 'button', class: 'btn', hidden: true }, 'Show older deliveries');
  const refreshButton = h('button', { type: 'button', class: 'btn btn-small', dataset: { key: 'refresh' } }, 'Refresh');
  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/webhooks' }, '← Webhooks')),
    title,
    results,
    summary,
    toolbar,
    secretBox,
    healthPanel(ctx, id),
    h('section', { class: 'card deliveries', 'aria-labelledby': 'log-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'log-title' }, 'Deliveries'), refreshButton),
      h('p', { class: 'hint' }, 'Newest first, with every attempt. Updates by itself while this page is open.'),
      recoverForm,
      logBox,
      moreButton));
  focusHeading(ctx);

  const pending = flash.get(id);
  if (pending) {
    flash.delete(id);
    replace(results, testResult(pending.test, pending.testError));
  }

  let sub = null;
  let subSignature = '';
  let limit = 20;
  let logSignature = '';
  const details = new Map(); // delivery id → { signature, attempts }
  let timer = 0;
  let loadingLog = false;
  let again = false;

  async function loadSub() {
    const fresh = await api.getSubscription(id);
    if (!ctx.alive()) return;
    const signature = JSON.stringify(fresh);
    if (signature === subSignature) return;
    subSignature = signature;
    sub = fresh;
    title.textContent = subName(sub);
    ctx.setTitle(subName(sub));
    renderSummary();
    renderToolbar();
  }

  function renderSummary() {
    const facts = [
      ['Status', h('span', null, enabledBadge(sub), sub.enabled ? '' : ` ${sub.disabled_reason ? sentence(sub.disabled_reason) : ''}`)],
      ['Health', healthFact(sub)],
      ['Platform', platformLabel(sub.platform)],
      ['Callback URL', h('span', { class: 'url' }, sub.url)],
      ['Events', eventChips(sub.events)],
    ];
    if (sub.platform === 'trello') facts.push(['Trello list', h('code', null, sub.platform_options.list_id ?? '')]);
    if (sub.platform === 'mattermost' && sub.platform_options.username) facts.push(['Bot name', sub.platform_options.username]);
    if (sub.description) facts.push(['Description', sub.description]);
    if (sub.auth_token_set) facts.push(['Bearer token', 'Saved (sent as Authorization: Bearer …)']);
    const headerNames = Object.keys(sub.headers ?? {});
    if (headerNames.length) facts.push(['Extra headers', headerNames.join(', ')]);
    if (sub.rate_limit_per_sec) facts.push(['Rate limit', `${sub.rate_limit_per_sec} per second`]);
    facts.push(['Created', timeEl(sub.created_at, { relative: false })]);
    facts.push(['ID', h('code', null, sub.id)]);
    const notice = sub.enabled ? null : h('div', { class: 'alert alert-warn' },
      h('p', null, 'This webhook is disabled: Herald does not send it any events. ',
        sub.disabled_reason ? `Reason: ${sentence(sub.disabled_reason)} ` : '',
        sub.disabled_at ? h('span', null, 'Disabled ', timeEl(sub.disabled_at), '. ') : '',
        'Enable it to deliver again.'),
      enableAndRecoverButton());
    swap(summary,
      notice,
      h('dl', { class: 'facts card' }, facts.map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v)))));
  }

  // Enables the webhook and queues again what failed while it was down, in one call.
  function enableAndRecoverButton() {
    const button = h('button', { type: 'button', class: 'btn btn-primary', dataset: { key: 'enable-recover' } }, 'Enable and resend what failed');
    button.addEventListener('click', () => busy(button, async () => {
      try {
        const answer = await api.enable(id, true);
        if (!ctx.alive()) return;
        const n = answer.recover?.recovered ?? 0;
        ctx.toast(`Webhook enabled: ${n} failed ${n === 1 ? 'delivery' : 'deliveries'} queued again.`);
        await loadSub();
        refreshLog();
      } catch (err) {
        if (ctx.alive()) ctx.toast(humanMessage(err), 'bad');
      }
    }));
    return button;
  }

  function renderToolbar() {
    const edit = h('button', { type: 'button', class: 'btn', dataset: { key: 'edit' }, onclick: () => ctx.navigate(`#/webhooks/${enc}/edit`) }, 'Edit');
    const test = h('button', { type: 'button', class: 'btn btn-primary', dataset: { key: 'test' } }, 'Send test event');
    test.addEventListener('click', () => busy(test, async () => {
      replace(results, h('p', { class: 'loading' }, 'Sending a test event…'));
      let result = null;
      let error = null;
      try {
        result = await api.test(id);
      } catch (err) {
        error = err;
      }
      if (!ctx.alive()) return;
      replace(results, testResult(result, error));
      refreshLog();
    }));
    const toggle = h('button', { type: 'button', class: 'btn', dataset: { key: 'toggle' } }, sub.enabled ? 'Disable' : 'Enable');
    toggle.addEventListener('click', () => busy(toggle, async () => {
      const enabled = !sub.enabled;
      try {
        if (enabled) await api.enable(id, false);
        else await api.updateSubscription(id, { enabled });
        if (!ctx.alive()) return;
        ctx.toast(enabled ? 'Webhook enabled: Herald sends it events again.' : 'Webhook disabled: Herald stops sending it events.');
        await loadSub();
      } catch (err) {
        if (ctx.alive()) ctx.toast(humanMessage(err), 'bad');
      }
    }));
    const remove = h('button', { type: 'button', class: 'btn btn-danger', dataset: { key: 'delete' } }, 'Delete');
    remove.addEventListener('click', async () => {
      const yes = await ctx.confirm({
        title: `Delete “${subName(sub)}”?`,
        message: 'Herald stops sending events to it at once, and its delivery log is no longer shown. This cannot be undone.',
        confirmLabel: 'Delete webhook',
        danger: true,
      });
      if (!yes || !ctx.alive()) return;
      try {
        await api.deleteSubscription(id);
        ctx.toast(`Webhook “${subName(sub)}” deleted.`, 'info', true);
        ctx.navigate('#/webhooks');
      } catch (err) {
        if (ctx.alive()) ctx.toast(humanMessage(err), 'bad');
      }
    });
    swap(toolbar, edit, test, toggle, remove);
  }

  renderSecret(ctx, id, secretBox);

  async function refreshLog() {
    if (!ctx.alive()) return;
    if (loadingLog) {
      again = true;
      return;
    }
    loadingLog = true;
    try {
      const page = await api.deliveries(id, { limit });
      if (!ctx.alive()) return;
      // Attempts: fetch a delivery again only when it changed.
      await mapLimit(page.data, 4, async (d) => {
        const signature = `${d.status}/${d.attempts}/${d.updated_at}`;
        const known = details.get(d.id);
        if (known && known.signature === signature) return;
        const full = await api.delivery(d.id);
        details.set(d.id, { signature, attempts: full.attempts_log ?? [] });
      });
      if (!ctx.alive()) return;
      const signature = JSON.stringify(page.data.map((d) => [d, details.get(d.id)?.attempts.length]));
      moreButton.hidden = !page.next_cursor || limit >= 100;
      if (signature !== logSignature) {
        logSignature = signature;
        renderLog(page.data);
      } else {
        // Only the relative times move on.
        for (const t of logBox.querySelectorAll('time[data-relative]')) t.textContent = relativeTime(t.dateTime);
      }
      schedule(page.data.some((d) => d.status === 'pending' || d.status === 'retrying') ? 1500 : 2500);
    } catch (err) {
      if (!ctx.alive()) return;
      if (!logSignature) swap(logBox, errorBox(err, () => refreshLog()));
      schedule(10000);
    } finally {
      loadingLog = false;
      if (again && ctx.alive()) {
        again = false;
        refreshLog();
      }
    }
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!ctx.alive()) return;
      if (document.visibilityState === 'hidden') {
        schedule(ms);
        return;
      }
      try {
        await loadSub();
      } catch {
        // The log refresh reports errors.
      }
      refreshLog();
    }, ms);
  }
  ctx.onCleanup(() => clearTimeout(timer));

  function renderLog(deliveries) {
    if (deliveries.length === 0) {
      swap(logBox, h('p', { class: 'empty' },
        'No deliveries yet. Use “Send test event”, or send an event to Herald that this webhook subscribes to.'));
      return;
    }
    swap(logBox, h('ol', { class: 'delivery-list', 'aria-label': 'Deliveries, newest first' },
      deliveries.map((d) => deliveryItem(ctx, d, details.get(d.id)?.attempts ?? [], () => refreshLog()))));
  }

  refreshButton.addEventListener('click', () => {
    logSignature = '';
    loadSub().catch(() => {});
    refreshLog();
  });
  moreButton.addEventListener('click', () => {
    limit = Math.min(100, limit + 20);
    refreshLog();
  });

  try {
    await loadSub();
  } catch (err) {
    if (!ctx.alive()) return;
    if (err.status === 404) {
      title.textContent = 'Webhook not found';
      replace(summary, h('p', null, 'This webhook does not exist (it may have been deleted). ', h('a', { href: '#/webhooks' }, 'Back to the webhooks.')));
      toolbar.remove();
      secretBox.remove();
      ctx.main.querySelector('.health')?.remove();
      ctx.main.querySelector('.deliveries')?.remove();
      return;
    }
    replace(summary, errorBox(err, () => detailView(ctx, id)));
  }
  refreshLog();
}

function deliveryItem(ctx, d, attempts, refresh) {
  const key = d.id;
  const retry = h('button', { type: 'button', class: 'btn btn-small', dataset: { key: `retry-${key}` } }, 'Retry');
  retry.addEventListener('click', () => busy(retry, async () => {
    try {
      await api.retry(d.id);
      if (!ctx.alive()) return;
      ctx.toast(`Delivery of ${d.event_type} queued again.`);
      refresh();
    } catch (err) {
      if (ctx.alive()) ctx.toast(humanMessage(err), 'bad');
    }
  }));
  const meta = [
    h('span', null, d.attempts === 1 ? '1 attempt' : `${d.attempts} attempts`),
    d.last_status_code ? h('span', null, `last answer HTTP ${d.last_status_code}`) : null,
    h('span', null, 'created ', relTime(d.created_at)),
    d.next_attempt_at && (d.status === 'retrying' || d.status === 'pending')
      ? h('span', null, 'next try ', relTime(d.next_attempt_at))
      : null,
  ].filter(Boolean);
  const list = attempts.length
    ? h('ol', { class: 'attempts', 'aria-label': `Attempts of ${d.event_type}` },
      [...attempts].sort((a, b) => b.number - a.number).map((a) => attemptItem(a, key)))
    : h('p', { class: 'hint' }, 'Not tried yet.');
  return h('li', { class: `delivery status-${d.status}` },
    h('div', { class: 'delivery-head' },
      h('h3', null, h('code', null, d.event_type), ' ', statusBadge(d.status)),
      retry),
    h('p', { class: 'meta' }, joinDots(meta)),
    h('p', { class: 'ids' }, 'Event ', h('code', null, d.event_id), ' · Delivery ', h('code', null, d.id)),
    d.last_error && d.status !== 'succeeded' && d.last_error !== `HTTP ${d.last_status_code}`
      ? h('p', { class: 'error-text' }, sentence(d.last_error))
      : null,
    list);
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

function recoverSection(ctx, id, after) {
  const input = h('input', {
    type: 'datetime-local', id: 'recover-since', name: 'since', required: true,
    value: toLocalInputValue(new Date(Date.now() - 24 * 3600 * 1000)),
    'aria-describedby': 'recover-hint',
  });
  const f = {
    wrap: null,
    control: input,
    error: h('p', { class: 'field-error', id: 'recover-since-error', hidden: true }),
    hint: h('p', { class: 'hint', id: 'recover-hint' }, 'Queue every failed delivery since this time (your local time) again.'),
  };
  const button = h('button', { type: 'submit', class: 'btn' }, 'Recover failed');
  const status = h('p', { class: 'progress', role: 'status' });
  const form = h('form', { class: 'recover', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'recover-since' }, 'Failed since'),
      f.hint,
      h('div', { class: 'inline' }, input, button),
      f.error),
    status);
  f.wrap = form.querySelector('.field');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearError(f);
    status.textContent = '';
    const when = new Date(input.value);
    if (!input.value || Number.isNaN(when.getTime())) {
      showError(f, 'Choose a date and time.');
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      // Each call examines a bounded part of the log; continue until there is no cursor.
      const since = when.toISOString();
      let n = 0;
      let cursor = null;
      do {
        const answer = await api.recover(id, since, cursor);
        if (!ctx.alive()) return;
        n += answer.recovered;
        cursor = answer.next_cursor;
        if (cursor) status.textContent = `${n} queued again so far…`;
      } while (cursor);
      status.textContent = n === 0
        ? `No failed deliveries since ${localTime(when.toISOString())}.`
        : `${n} failed ${n === 1 ? 'delivery was' : 'deliveries were'} queued again.`;
      after();
    } catch (err) {
      if (!ctx.alive()) return;
      if (err.field === 'since') showError(f, humanMessage(err));
      else status.textContent = humanMessage(err);
    }
    button.disabled = false;
  });
  return form;
}

function renderSecret(ctx, id, box) {
  const intro = h('p', { class: 'hint' },
    'Herald signs every delivery with this secret (Standard Webhooks: the webhook-signature header). Your receiver uses it to check that a request came from Herald.');
  const area = h('div', { class: 'secret-area' });
  const status = h('p', { class: 'progress', role: 'status' });
  const reveal = h('button', { type: 'button', class: 'btn', dataset: { key: 'reveal' } }, 'Reveal secret');
  const rotate = h('button', { type: 'button', class: 'btn', dataset: { key: 'rotate' } }, 'Rotate secret');

  function show(secret) {
    const input = h('input', { id: 'secret-value', type: 'text', readonly: true, value: secret, class: 'mono', spellcheck: 'false' });
    const copy = h('button', { type: 'button', class: 'btn' }, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(secret);
      } catch {
        input.select();
        document.execCommand('copy');
      }
      status.textContent = 'Secret copied to the clipboard.';
    });
    const hide = h('button', { type: 'button', class: 'btn' }, 'Hide');
    hide.addEventListener('click', () => {
      replace(area);
      reveal.hidden = false;
      status.textContent = '';
      reveal.focus();
    });
    replace(area, h('div', { class: 'field' },
      h('label', { for: 'secret-value' }, 'Signing secret'),
      h('div', { class: 'inline' }, input, copy, hide)));
    reveal.hidden = true;
    return input;
  }

  reveal.addEventListener('click', () => busy(reveal, async () => {
    try {
      const answer = await api.getSecret(id);
      if (!ctx.alive()) return;
      show(answer.secret).focus();
      status.textContent = '';
    } catch (err) {
      if (ctx.alive()) status.textContent = humanMessage(err);
    }
  }));
  rotate.addEventListener('click', async () => {
    const yes = await ctx.confirm({
      title: 'Rotate the signing secret?',
      message: 'Herald creates a new secret and signs with it from now on. The current secret keeps signing too for 24 hours, so you have time to update your receiver.',
      confirmLabel: 'Rotate secret',
    });
    if (!yes || !ctx.alive()) return;
    await busy(rotate, async () => {
      try {
        const answer = await api.rotateSecret(id);
        if (!ctx.alive()) return;
        show(answer.secret).focus();
        status.textContent = `New secret created. The previous one keeps signing until ${localTime(answer.previous_secret_expires_at)}.`;
      } catch (err) {
        if (ctx.alive()) status.textContent = humanMessage(err);
      }
    });
  });
  replace(box,
    h('h2', { id: 'secret-title' }, 'Signing secret'),
    intro,
    area,
    h('div', { class: 'actions' }, reveal, rotate),
    status);
}

// ---- event types --------------------------------------------------------------------------------

export async function eventTypesView(ctx) {
  const body = h('div', null, loading('Loading event types…'));
  replace(ctx.main,
    heading(ctx, 'Event types'),
    h('p', { class: 'lead' },
      'The events a source application can send to Herald. Choose them when you add a webhook; a pattern such as ',
      h('code', null, 'document.*'), ' matches every document event, and ', h('code', null, '*'), ' matches all.'),
    body);
  focusHeading(ctx);
  try {
    eventTypesCache = null;
    const types = await eventTypes();
    if (!ctx.alive()) return;
    replace(body, h('div', { class: 'card table-wrap' }, h('table', { class: 'types' },
      h('caption', { class: 'visually-hidden' }, 'Event types'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Event type'), h('th', { scope: 'col' }, 'What happened'), h('th', { scope: 'col' }, 'Source'))),
      h('tbody', null, types.map((t) => h('tr', null,
        h('th', { scope: 'row' }, h('code', null, breakAtDots(t.name))),
        h('td', null, t.description ?? ''),
        h('td', null, t.operational ? 'Herald (subscribe with herald.*)' : t.builtin ? 'Built in' : 'Registered')))))));
  } catch (err) {
    if (ctx.alive()) replace(body, errorBox(err, () => eventTypesView(ctx)));
  }
}

/** `a.b.c` with line-break chances after the dots. */
function breakAtDots(name) {
  const out = [];
  name.split('.').forEach((part, i) => {
    if (i) out.push('.', h('wbr'));
    out.push(part);
  });
  return out;
}

export function notFoundView(ctx) {
  replace(ctx.main,
    heading(ctx, 'Page not found'),
    h('p', null, 'There is no such page in the console. ', h('a', { href: '#/webhooks' }, 'Go to the webhooks.')));
  focusHeading(ctx);
}
