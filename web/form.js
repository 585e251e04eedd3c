// The console's add / edit form of a webhook: platform, URL, event types, the payload filter and
// the message template (message.js), headers, auth, and "Save and test", whose result the detail
// page (detail.js) shows.

import { api } from './api.js';
import { h, nextId, replace } from './dom.js';
import { TEMPLATE_PLATFORMS, filterEditor, templateEditor } from './message.js';
import {
  PLATFORMS, clearError, errorBox, eventTypes, field, focusHeading, heading, humanMessage, loading,
  sentence, showError, wildcards,
} from './views.js';

// ---- add / edit ---------------------------------------------------------------------------------

/** Results of "Save and test", shown on the detail page it leads to. */
export const flash = new Map();

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

  fields.filter = filterEditor({ filter: sub?.filter ?? null, types });
  const chosenEvents = () => [...fieldset.querySelectorAll('input[name="events"]:checked')].map((i) => i.value);

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

  fields.template = templateEditor({
    template: sub?.template ?? '',
    types,
    chosen: chosenEvents,
    subscription: () => previewSubscription(),
  });

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
    fields.filter.wrap,
    fields.template.wrap,
    more,
    h('div', { class: 'actions' }, saveTest, save, cancel),
    progress);

  /** The form's platform and its options, for the message preview (credentials left out). */
  function previewSubscription() {
    const p = platform.value;
    const body = { platform: p };
    if (p === 'mattermost') {
      const options = {};
      const username = fields['platform_options.username'].control.value.trim();
      const icon = fields['platform_options.icon_url'].control.value.trim();
      if (username) options.username = username;
      if (icon) options.icon_url = icon;
      body.platform_options = options;
    }
    return body;
  }

  function showPlatform() {
    const p = platform.value;
    trelloBox.hidden = p !== 'trello';
    mattermostBox.hidden = p !== 'mattermost';
    fields.url.wrap.hidden = p === 'trello';
    fields.platform.hint.textContent = PLATFORMS.find((x) => x.value === p)?.hint ?? '';
    fields.template.wrap.hidden = !TEMPLATE_PLATFORMS.includes(p);
    if (!fields.template.wrap.hidden) fields.template.refresh();
  }
  platform.addEventListener('change', showPlatform);
  for (const name of ['platform_options.username', 'platform_options.icon_url']) {
    fields[name].control.addEventListener('change', () => fields.template.refresh());
  }
  showPlatform();

  /** The form field an API error names: `filter.all[1].in` is the filter, and so on. */
  function fieldOf(name) {
    if (name.startsWith('platform_options')) return fields.platform;
    if (name.startsWith('filter')) return fields.filter;
    if (name.endsWith('template')) return fields.template;
    return null;
  }

  function clearAll() {
    summary.hidden = true;
    replace(summary);
    for (const f of Object.values(fields)) clearError(f);
  }

  /** Shows an error beside its field (or at the top) and moves focus there. */
  function showApiError(err) {
    const f = err.field ? fields[err.field] ?? fieldOf(err.field) : null;
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
    body.events = chosenEvents();
    const filter = fields.filter.value();
    if (filter.error) return { error: { field: 'filter', message: filter.error } };
    if (editing) body.filter = filter.filter;
    else if (filter.filter) body.filter = filter.filter;
    const template = fields.template.value();
    if (TEMPLATE_PLATFORMS.includes(p)) {
      if (template.trim()) body.template = template;
      else if (editing && sub.template) body.template = null;
    } else if (editing && sub.template) {
      body.template = null;
    }
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

/** The answer to "Save and test", "Send test event" or, with `example` (its type), "Send example". */
export function testResult(result, error, example = null) {
  const what = example ? `The example ${example} event` : 'The test';
  if (error) {
    return h('div', { class: 'alert alert-bad test-result' },
      h('h2', null, `${what} could not be sent`),
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
      h('h2', null, example ? `Example ${example} delivery arrived` : 'Test delivery arrived'),
      h('p', null, `The receiver answered ${facts}.`),
      excerpt);
  }
  return h('div', { class: 'alert alert-bad test-result' },
    h('h2', null, `${example ? `The example ${example}` : 'The test'} delivery did not arrive`),
    h('p', null, facts),
    result.error ? h('p', null, sentence(result.error)) : null,
    h('p', null, 'Check the callback URL and that the receiver answers with a 2xx status, then send another test.'),
    excerpt);
}
