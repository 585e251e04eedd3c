// The console's event catalog: the built-in event types and the tenant's own, each with its
// example and JSON Schema; "Add event type"; deleting a registered type; and the tenant setting
// that refuses events of types the catalog does not know.

import { api } from './api.js';
import { h, replace, timeEl } from './dom.js';
import {
  busy, clearError, errorBox, eventTypes, field, focusHeading, forgetEventTypes, heading,
  humanMessage, loading, showError,
} from './views.js';

// ---- the catalog page ---------------------------------------------------------------------------

export async function eventTypesView(ctx) {
  const add = h('button', {
    type: 'button', class: 'btn btn-primary', onclick: () => ctx.navigate('#/event-types/new'),
  }, 'Add event type');
  const body = h('div', null, loading('Loading event types…'));
  const settingsBox = h('section', { class: 'card settings', 'aria-labelledby': 'unknown-title' });
  replace(ctx.main,
    h('div', { class: 'page-head' }, heading(ctx, 'Event types'), add),
    h('p', { class: 'lead' },
      'The events a source application can send to Herald. Choose them when you add a webhook; a pattern such as ',
      h('code', null, 'document.*'), ' matches every document event, and ', h('code', null, '*'), ' matches all. ',
      'Give a type a JSON Schema and Herald refuses events whose data does not match it.'),
    body,
    settingsBox);
  focusHeading(ctx);

  async function load() {
    forgetEventTypes();
    let types;
    try {
      types = await eventTypes();
    } catch (err) {
      if (ctx.alive()) replace(body, errorBox(err, load));
      return;
    }
    if (!ctx.alive()) return;
    const own = types.filter((t) => !t.builtin);
    const builtin = types.filter((t) => t.builtin && !t.operational);
    const operational = types.filter((t) => t.operational);
    replace(body,
      typeSection(ctx, 'Your event types', 'own-types', own, load,
        h('p', { class: 'hint' }, 'None yet. “Add event type” registers one, with a schema if you like.')),
      typeSection(ctx, 'Built in', 'builtin-types', builtin, load),
      typeSection(ctx, 'Herald’s own events', 'operational-types', operational, load,
        null, 'Subscribe with herald.* to hear when a webhook fails, is disabled or recovers.'));
  }
  load();
  settingsSection(ctx, settingsBox);
}

function typeSection(ctx, title, id, types, reload, empty = null, hint = null) {
  return h('section', { class: 'card types-section', 'aria-labelledby': id },
    h('h2', { id }, title),
    hint ? h('p', { class: 'hint' }, hint) : null,
    types.length === 0 ? empty : h('ul', { class: 'type-list', 'aria-label': title },
      types.map((t) => typeItem(ctx, t, reload))));
}

function typeItem(ctx, t, reload) {
  const facts = [];
  if (t.deprecated) facts.push(h('span', { class: 'badge badge-warn' }, 'Deprecated'));
  if (t.schema) facts.push(h('span', { class: 'badge badge-ok' }, 'Schema'));
  if (!t.builtin && t.updated_at) facts.push(h('span', { class: 'hint' }, 'Changed ', timeEl(t.updated_at)));
  const remove = t.builtin ? null : h('button', { type: 'button', class: 'btn btn-small btn-danger' }, `Delete ${t.name}`);
  remove?.addEventListener('click', () => busy(remove, async () => {
    const ok = await ctx.confirm({
      title: `Delete ${t.name}?`,
      message: 'Webhooks that name it keep it; Herald stops checking its events against the schema, and refuses them if unknown types are refused.',
      confirmLabel: 'Delete',
      danger: true,
    });
    if (!ok) return;
    try {
      await api.deleteEventType(t.name);
      if (!ctx.alive()) return;
      ctx.toast(`${t.name} deleted.`);
      reload();
    } catch (err) {
      if (ctx.alive()) ctx.toast(humanMessage(err), 'bad');
    }
  }));
  return h('li', { class: 'type-item' },
    h('div', { class: 'type-head' },
      h('h3', null, h('code', null, t.name)),
      facts,
      remove),
    h('p', null, t.description || h('span', { class: 'hint' }, 'No description.')),
    t.example ? jsonDetails('Example data', t.example) : null,
    t.schema ? jsonDetails('Schema of data', t.schema) : null);
}

function jsonDetails(label, value) {
  return h('details', { class: 'json' },
    h('summary', null, label),
    h('pre', { class: 'mono' }, JSON.stringify(value, null, 2)));
}

async function settingsSection(ctx, box) {
  replace(box, h('h2', { id: 'unknown-title' }, 'Events of unknown types'), loading('Loading…'));
  let settings;
  try {
    settings = await api.settings();
  } catch (err) {
    if (ctx.alive()) replace(box, h('h2', { id: 'unknown-title' }, 'Events of unknown types'), errorBox(err, () => settingsSection(ctx, box)));
    return;
  }
  if (!ctx.alive()) return;
  const refuse = h('input', {
    type: 'checkbox', id: 'refuse-unknown', checked: settings.unknown_event_types === 'reject',
    'aria-describedby': 'refuse-unknown-hint',
  });
  const status = h('p', { class: 'progress', role: 'status' });
  refuse.addEventListener('change', async () => {
    refuse.disabled = true;
    const value = refuse.checked ? 'reject' : 'accept';
    try {
      await api.updateSettings({ unknown_event_types: value });
      if (!ctx.alive()) return;
      status.textContent = refuse.checked
        ? 'Saved: Herald now refuses events of types that are not in the catalog.'
        : 'Saved: Herald accepts events of any type.';
    } catch (err) {
      if (!ctx.alive()) return;
      refuse.checked = !refuse.checked;
      status.textContent = humanMessage(err);
    }
    refuse.disabled = false;
  });
  replace(box,
    h('h2', { id: 'unknown-title' }, 'Events of unknown types'),
    h('div', { class: 'check' },
      refuse,
      h('label', { for: 'refuse-unknown' }, 'Refuse events of types not in the catalog'),
      h('span', { class: 'hint', id: 'refuse-unknown-hint' },
        'When on, Herald answers 422 to an event whose type is neither built in nor yours, so a typo in the source application shows at once.')),
    status);
}

// ---- add an event type --------------------------------------------------------------------------

export function eventTypeFormView(ctx) {
  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/event-types' }, '← Event types')),
    heading(ctx, 'Add event type'),
    buildTypeForm(ctx));
  focusHeading(ctx);
}

const SCHEMA_PLACEHOLDER = `{
  "type": "object",
  "required": ["title", "space"],
  "properties": {
    "title": { "type": "string" },
    "space": {
      "type": "object",
      "required": ["name"],
      "properties": { "name": { "type": "string" } }
    }
  }
}`;

function buildTypeForm(ctx) {
  const fields = {};
  const summary = h('div', { class: 'alert alert-bad', role: 'alert', tabindex: '-1', hidden: true });
  fields.name = field({
    label: 'Name',
    key: 'name',
    hint: 'Lowercase words joined by dots, for example space.archived. Names starting with herald. are Herald’s own.',
    control: h('input', { type: 'text', name: 'name', autocomplete: 'off', spellcheck: 'false', required: true, maxlength: '255' }),
  });
  fields.description = field({
    label: 'Description',
    key: 'description',
    hint: 'What happened, in one sentence. Shown to people choosing events for a webhook.',
    control: h('input', { type: 'text', name: 'description', autocomplete: 'off', maxlength: '500' }),
  });
  fields.schema = field({
    label: 'JSON Schema of the data (optional)',
    key: 'schema',
    hint: 'Draft 2020-12. Herald checks every event of this type against it and refuses those that do not match.',
    control: h('textarea', { name: 'schema', rows: '10', spellcheck: 'false', class: 'mono', placeholder: SCHEMA_PLACEHOLDER }),
  });
  fields.example = field({
    label: 'Example data (optional)',
    key: 'example',
    hint: 'A typical data object: the message preview and “Send example” use it. It must match the schema.',
    control: h('textarea', { name: 'example', rows: '6', spellcheck: 'false', class: 'mono', placeholder: '{ "title": "Getting started", "space": { "name": "Handbook" } }' }),
  });
  const deprecated = h('input', { type: 'checkbox', id: 'type-deprecated', name: 'deprecated' });
  const save = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add event type');
  const progress = h('p', { class: 'progress', role: 'status' });
  const form = h('form', { class: 'card type-form', novalidate: true },
    summary,
    fields.name.wrap,
    fields.description.wrap,
    fields.schema.wrap,
    fields.example.wrap,
    h('div', { class: 'check' }, deprecated, h('label', { for: 'type-deprecated' }, 'Deprecated (still accepted; marked in the catalog)')),
    h('div', { class: 'actions' }, save, h('a', { class: 'btn btn-link', href: '#/event-types' }, 'Cancel')),
    progress);

  function fail(key, message) {
    const f = fields[key];
    if (f) {
      showError(f, message);
      replace(summary, h('p', null, 'The event type was not added. Fix the field marked below.'));
      summary.hidden = false;
      f.control.focus();
    } else {
      replace(summary, h('p', null, `The event type was not added. ${message}`));
      summary.hidden = false;
      summary.focus();
    }
  }

  function parseJson(key) {
    const text = fields[key].control.value.trim();
    if (!text) return { value: undefined };
    try {
      return { value: JSON.parse(text) };
    } catch (err) {
      return { error: `This is not valid JSON: ${err.message}` };
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    summary.hidden = true;
    for (const f of Object.values(fields)) clearError(f);
    const body = { name: fields.name.control.value.trim() };
    if (!body.name) {
      fail('name', 'Enter a name, for example space.archived.');
      return;
    }
    const description = fields.description.control.value.trim();
    if (description) body.description = description;
    for (const key of ['schema', 'example']) {
      const parsed = parseJson(key);
      if (parsed.error) {
        fail(key, parsed.error);
        return;
      }
      if (parsed.value !== undefined) body[key] = parsed.value;
    }
    if (deprecated.checked) body.deprecated = true;
    save.disabled = true;
    progress.textContent = 'Saving…';
    try {
      await api.createEventType(body);
    } catch (err) {
      if (!ctx.alive()) return;
      save.disabled = false;
      progress.textContent = '';
      const key = err.field && fields[err.field.split(/[.[/]/)[0]] ? err.field.split(/[.[/]/)[0] : null;
      fail(key, err.status === 409 ? 'There is already an event type with this name.' : humanMessage(err));
      return;
    }
    if (!ctx.alive()) return;
    forgetEventTypes();
    ctx.toast(`${body.name} added to the catalog.`, 'info', true);
    ctx.navigate('#/event-types');
  });
  return form;
}
