// The webhook form's message tools: the payload filter editor ("Only events where …") and, for the
// chat platforms and Trello, the message template editor with a live preview. The preview asks
// Herald what it would send (POST /v1/subscriptions/preview: the same code as a delivery) and
// draws it as the platform shows it: Slack blocks, a Teams card, a Mattermost post, a Trello card.
// Everything is drawn with text nodes: nothing from a payload is ever parsed as HTML.

import { api } from './api.js';
import { h, nextId, replace } from './dom.js';
import { humanMessage } from './views.js';

// ---- the filter editor --------------------------------------------------------------------------

const OPERATORS = [
  { op: 'eq', label: 'is' },
  { op: 'neq', label: 'is not' },
  { op: 'in', label: 'is one of' },
  { op: 'prefix', label: 'starts with' },
  { op: 'exists', label: 'is present' },
  { op: 'gt', label: '>' },
  { op: 'gte', label: '≥' },
  { op: 'lt', label: '<' },
  { op: 'lte', label: '≤' },
];
const SIMPLE_OPS = ['eq', 'in', 'prefix', 'exists', 'gt', 'gte', 'lt', 'lte'];

/** A filter as rows `{path, op, value}` joined by `mode` ('all' | 'any'), or null if it is not that simple. */
export function filterToRows(filter) {
  if (!filter) return { mode: 'all', rows: [] };
  const row = (c) => {
    if (!c || typeof c !== 'object') return null;
    if (c.not && Object.keys(c).length === 1) {
      const inner = c.not;
      if (inner && typeof inner.path === 'string' && 'eq' in inner && Object.keys(inner).length === 2) {
        return { path: inner.path, op: 'neq', value: valueText(inner.eq) };
      }
      return null;
    }
    if (typeof c.path !== 'string' || Object.keys(c).length !== 2) return null;
    const op = SIMPLE_OPS.find((o) => o in c);
    if (!op) return null;
    if (op === 'exists') return c.exists === true ? { path: c.path, op, value: '' } : null;
    if (op === 'in') return Array.isArray(c.in) ? { path: c.path, op, value: c.in.map(valueText).join(', ') } : null;
    return { path: c.path, op, value: valueText(c[op]) };
  };
  for (const mode of ['all', 'any']) {
    if (Array.isArray(filter[mode]) && Object.keys(filter).length === 1) {
      const rows = filter[mode].map(row);
      return rows.every(Boolean) ? { mode, rows } : null;
    }
  }
  const one = row(filter);
  return one ? { mode: 'all', rows: [one] } : null;
}

function valueText(v) {
  return typeof v === 'string' && !looksTyped(v) ? v : JSON.stringify(v);
}

/** Text a user typed that would be read as a number, true, false or null rather than as text. */
function looksTyped(text) {
  return /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)$/.test(text) || /^".*"$/.test(text);
}

/** The typed value: numbers, booleans, null and "quoted" text as JSON, anything else as text. */
function typedValue(text) {
  const t = text.trim();
  if (looksTyped(t)) {
    try {
      return JSON.parse(t);
    } catch {
      return t;
    }
  }
  return t;
}

/** Rows back to the filter JSON the API takes; `{error}` names the row that is not complete. */
export function rowsToFilter(mode, rows) {
  const conditions = [];
  for (const [i, r] of rows.entries()) {
    const n = i + 1;
    if (!r.path.trim()) return { error: `Condition ${n}: enter the field, for example data.space.name.` };
    const path = r.path.trim();
    if (r.op === 'exists') {
      conditions.push({ path, exists: true });
      continue;
    }
    if (!r.value.trim()) return { error: `Condition ${n}: enter the value to compare with.` };
    if (r.op === 'neq') conditions.push({ not: { path, eq: typedValue(r.value) } });
    else if (r.op === 'in') conditions.push({ path, in: r.value.split(',').map(typedValue).filter((v) => v !== '') });
    else if (['gt', 'gte', 'lt', 'lte'].includes(r.op)) {
      const number = Number(r.value.trim());
      if (!Number.isFinite(number)) return { error: `Condition ${n}: compare with a number.` };
      conditions.push({ path, [r.op]: number });
    } else conditions.push({ path, [r.op]: typedValue(r.value) });
  }
  if (conditions.length === 0) return { filter: null };
  if (conditions.length === 1) return { filter: conditions[0] };
  return { filter: { [mode]: conditions } };
}

/** Field paths offered while typing, from the example data of the catalog's types. */
function suggestedPaths(types) {
  const paths = new Set(['type', 'id', 'timestamp']);
  const walk = (value, prefix, depth) => {
    if (depth > 4 || !value || typeof value !== 'object' || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) {
      const p = `${prefix}.${k}`;
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, p, depth + 1);
      else paths.add(p);
    }
  };
  for (const t of types) walk(t.example, 'data', 0);
  return [...paths].sort();
}

/**
 * The filter editor: conditions as rows (field, operator, value), all or any of them, or the
 * filter's JSON for what rows cannot say. `value()` answers `{filter}` (null: no filter) or `{error}`.
 */
export function filterEditor({ filter, types }) {
  const listId = nextId('paths');
  const datalist = h('datalist', { id: listId }, suggestedPaths(types).map((p) => h('option', { value: p })));
  const simple = filterToRows(filter);
  let jsonMode = simple === null;
  const rows = [];
  const rowBox = h('ol', { class: 'filter-rows', 'aria-label': 'Conditions' });
  const modeId = nextId('filter-mode');
  const mode = h('select', { id: modeId },
    h('option', { value: 'all', selected: simple?.mode !== 'any' }, 'all of these conditions'),
    h('option', { value: 'any', selected: simple?.mode === 'any' }, 'any of these conditions'));
  const modeLine = h('p', { class: 'filter-mode' }, h('label', { for: modeId }, 'Send events that meet '), mode);
  const add = h('button', { type: 'button', class: 'btn btn-small' }, 'Add condition');
  const jsonId = nextId('filter-json');
  const json = h('textarea', {
    id: jsonId, rows: '6', spellcheck: 'false', class: 'mono', 'aria-describedby': `${jsonId}-hint`,
  }, filter ? JSON.stringify(filter, null, 2) : '');
  const jsonBox = h('div', { class: 'filter-json' },
    h('label', { for: jsonId }, 'Filter as JSON'),
    h('p', { class: 'hint', id: `${jsonId}-hint` }, 'The filter language of the README: eq, in, exists, prefix, gt, gte, lt, lte, combined with all, any and not.'),
    json);
  const toggle = h('button', { type: 'button', class: 'btn btn-small btn-link' });
  const problem = h('p', { class: 'field-error', id: nextId('filter-error'), hidden: true });

  function addRow(r = { path: '', op: 'eq', value: '' }) {
    const n = rows.length + 1;
    const pathId = nextId('cond-path');
    const opId = nextId('cond-op');
    const valueId = nextId('cond-value');
    const path = h('input', { id: pathId, type: 'text', list: listId, value: r.path, spellcheck: 'false', autocomplete: 'off', placeholder: 'data.space.name', class: 'mono' });
    const op = h('select', { id: opId }, OPERATORS.map((o) => h('option', { value: o.op, selected: o.op === r.op }, o.label)));
    const value = h('input', { id: valueId, type: 'text', value: r.value, autocomplete: 'off', placeholder: 'Handbook' });
    const remove = h('button', { type: 'button', class: 'btn btn-small' }, `Remove condition ${n}`);
    const li = h('li', { class: 'filter-row' },
      h('label', { for: pathId, class: 'visually-hidden' }, `Condition ${n}: field`), path,
      h('label', { for: opId, class: 'visually-hidden' }, `Condition ${n}: comparison`), op,
      h('label', { for: valueId, class: 'visually-hidden' }, `Condition ${n}: value`), value,
      remove);
    const row = { li, path, op, value };
    const sync = () => {
      value.hidden = op.value === 'exists';
      value.placeholder = op.value === 'in' ? 'Handbook, Guides' : op.value.startsWith('g') || op.value.startsWith('l') ? '3' : 'Handbook';
    };
    op.addEventListener('change', sync);
    sync();
    remove.addEventListener('click', () => {
      rows.splice(rows.indexOf(row), 1);
      li.remove();
      renumber();
      add.focus();
    });
    rows.push(row);
    rowBox.append(li);
    return row;
  }

  function renumber() {
    rows.forEach((row, i) => {
      const labels = row.li.querySelectorAll('label');
      labels[0].textContent = `Condition ${i + 1}: field`;
      labels[1].textContent = `Condition ${i + 1}: comparison`;
      labels[2].textContent = `Condition ${i + 1}: value`;
      row.li.querySelector('button').textContent = `Remove condition ${i + 1}`;
    });
    modeLine.hidden = rows.length < 2;
  }

  function current() {
    if (jsonMode) {
      const text = json.value.trim();
      if (!text) return { filter: null };
      try {
        return { filter: JSON.parse(text) };
      } catch (err) {
        return { error: `The filter is not valid JSON: ${err.message}` };
      }
    }
    return rowsToFilter(mode.value, rows.map((r) => ({ path: r.path.value, op: r.op.value, value: r.value.value })));
  }

  function show() {
    rowBox.hidden = jsonMode;
    add.hidden = jsonMode;
    modeLine.hidden = jsonMode || rows.length < 2;
    jsonBox.hidden = !jsonMode;
    toggle.textContent = jsonMode ? 'Edit as conditions' : 'Edit as JSON';
  }

  toggle.addEventListener('click', () => {
    problem.hidden = true;
    const now = current();
    if (now.error) {
      problem.textContent = now.error;
      problem.hidden = false;
      return;
    }
    if (jsonMode) {
      const back = filterToRows(now.filter);
      if (!back) {
        problem.textContent = 'This filter says more than conditions can show (nested all, any or not). Keep editing it as JSON.';
        problem.hidden = false;
        return;
      }
      for (const r of rows.splice(0)) r.li.remove();
      back.rows.forEach((r) => addRow(r));
      mode.value = back.mode;
      renumber();
    } else {
      json.value = now.filter ? JSON.stringify(now.filter, null, 2) : '';
    }
    jsonMode = !jsonMode;
    show();
  });
  add.addEventListener('click', () => {
    addRow().path.focus();
    renumber();
  });

  (simple?.rows ?? []).forEach((r) => addRow(r));
  renumber();
  show();

  const hint = h('p', { class: 'hint', id: nextId('filter-hint') },
    'Herald sends this webhook only the events of the chosen types whose fields meet these conditions, for example ',
    h('code', null, 'data.space.name'), ' is ', h('code', null, 'Handbook'), '. No condition: every event of those types.');
  const wrap = h('fieldset', { class: 'field filter', tabindex: '-1', 'aria-describedby': hint.id },
    h('legend', null, 'Filter (optional)'),
    hint, datalist, modeLine, rowBox, add, jsonBox, toggle, problem);
  // The shape of views.js's `field`, so API errors show here like beside any other field.
  return { wrap, control: wrap, error: problem, hint, value: current };
}

// ---- the template editor and live preview -------------------------------------------------------

export const TEMPLATE_PLATFORMS = ['slack', 'mattermost', 'teams', 'trello'];

const TEMPLATE_HINT = {
  slack: 'Slack mrkdwn: *bold*, _italic_, <https://example.com|a link>.',
  mattermost: 'Markdown: **bold**, _italic_, [a link](https://example.com).',
  teams: 'Markdown as Teams cards show it: **bold**, _italic_, [a link](https://example.com).',
  trello: 'The first line is the card’s name; the rest its description (Markdown).',
};

/**
 * The template editor with its preview. `subscription()` gives the form's subscription body as it
 * stands (platform and options); the preview updates as the user types, picks another example
 * event type, or changes the platform (call `refresh()`).
 */
export function templateEditor({ template, types, chosen, subscription }) {
  const id = nextId('template');
  const area = h('textarea', {
    id, name: 'template', rows: '5', spellcheck: 'false', class: 'mono',
    'aria-describedby': `${id}-hint`,
    placeholder: '{{ data.author.name }} published *{{ data.title }}* in {{ data.space.name }}',
  }, template ?? '');
  const hint = h('p', { class: 'hint', id: `${id}-hint` });
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const withExamples = types.filter((t) => t.example && !t.operational);
  const pickId = nextId('preview-type');
  const first = withExamples.find((t) => chosen().includes(t.name))
    ?? withExamples.find((t) => t.name === 'document.published') ?? withExamples[0];
  const pick = h('select', { id: pickId },
    withExamples.map((t) => h('option', { value: t.name, selected: t === first }, t.name)));
  const sketch = h('div', { class: 'sketch', role: 'region', 'aria-label': 'Message preview', 'aria-live': 'polite' });
  const raw = h('pre', { class: 'mono raw' });
  const rawBox = h('details', { class: 'json' }, h('summary', null, 'What Herald sends'), raw);
  const wrap = h('div', { class: 'field template', dataset: { field: 'template' } },
    h('label', { for: id }, 'Message template (optional)'),
    hint,
    area,
    error,
    h('div', { class: 'preview' },
      h('p', { class: 'preview-head' },
        h('label', { for: pickId }, 'Preview with the example of '), pick),
      sketch,
      rawBox));

  let timer = 0;
  let asked = 0;

  async function refresh() {
    clearTimeout(timer);
    const sub = subscription();
    hint.replaceChildren(
      'Shapes the message from the event: ', h('code', null, '{{ data.title }}'), ', ', h('code', null, '{{ data.author.name }}'),
      ', ', h('code', null, '{{ type }}'), ', ', h('code', null, '{% if … %}'), '. ',
      TEMPLATE_HINT[sub.platform] ?? '', ' Empty: Herald’s standard message. Values from the event are escaped for the platform.');
    const type = withExamples.find((t) => t.name === pick.value);
    if (!type) {
      replace(sketch, h('p', { class: 'hint' }, 'No event type with example data to preview.'));
      return;
    }
    const body = { subscription: { platform: sub.platform }, event: { type: type.name, data: type.example } };
    if (sub.platform_options) body.subscription.platform_options = sub.platform_options;
    if (area.value.trim()) body.subscription.template = area.value;
    asked += 1;
    const mine = asked;
    sketch.dataset.state = 'pending';
    let answer;
    try {
      answer = await api.preview(body);
    } catch (err) {
      if (mine !== asked) return;
      showProblem(err);
      return;
    }
    if (mine !== asked) return;
    clearProblem();
    sketch.dataset.state = 'ready';
    replace(sketch, drawMessage(sub.platform, answer));
    raw.textContent = [`${answer.method ?? 'POST'} ${answer.url}`,
      ...(answer.headers ?? []).map(([k, v]) => `${k}: ${v}`), '', prettyBody(answer.body)].join('\n');
  }

  function showProblem(err) {
    sketch.classList.add('stale');
    sketch.dataset.state = 'failed';
    const aboutTemplate = err.code === 'invalid_template' || /(^|\.)template$/.test(err.field ?? '');
    if (!aboutTemplate) {
      // Not the template's fault (the server, the network): say so beside the preview only.
      clearMark();
      replace(sketch, h('p', { class: 'hint' }, `No preview right now. ${humanMessage(err)}`));
      return;
    }
    error.textContent = `The template cannot be used: ${err.message}`;
    error.hidden = false;
    area.setAttribute('aria-invalid', 'true');
    area.setAttribute('aria-describedby', `${id}-hint ${id}-error`);
  }

  function clearProblem() {
    clearMark();
    sketch.classList.remove('stale');
  }

  function clearMark() {
    error.hidden = true;
    error.textContent = '';
    area.removeAttribute('aria-invalid');
    area.setAttribute('aria-describedby', `${id}-hint`);
  }

  // `data-state` says whether the sketch shows the template as typed: pending while a preview is
  // due or asked, ready when it came, failed when it could not be made.
  const later = () => {
    sketch.dataset.state = 'pending';
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  };
  area.addEventListener('input', later);
  pick.addEventListener('change', refresh);

  return {
    wrap,
    control: area,
    error,
    hint,
    refresh,
    value: () => area.value,
  };
}

function prettyBody(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text ?? '';
  }
}

/** The message as the platform shows it, from the body Herald would send. */
export function drawMessage(platform, answer) {
  let body;
  try {
    body = JSON.parse(answer.body);
  } catch {
    return h('pre', { class: 'mono' }, answer.body);
  }
  if (platform === 'slack') return slackMessage(body);
  if (platform === 'teams') return teamsMessage(body);
  if (platform === 'mattermost') return mattermostPost(body);
  if (platform === 'trello') return trelloCard(body);
  return h('pre', { class: 'mono' }, JSON.stringify(body, null, 2));
}

function appHeader(name, tag) {
  return h('p', { class: 'sketch-from' },
    h('span', { class: 'avatar', 'aria-hidden': 'true' }, name.slice(0, 1).toUpperCase()),
    h('span', { class: 'sketch-name' }, name), ' ', h('span', { class: 'tag' }, tag));
}

function slackMessage(body) {
  const blocks = Array.isArray(body.blocks) ? body.blocks : [];
  const parts = blocks.map((b) => {
    if (b.type === 'section') {
      return h('div', { class: 'slack-section' },
        h('div', null, b.text ? slackText(b.text) : null,
          Array.isArray(b.fields) ? h('div', { class: 'slack-fields' }, b.fields.map((f) => h('div', null, slackText(f)))) : null),
        b.accessory?.type === 'button' ? h('span', { class: 'sketch-button' }, b.accessory.text?.text ?? 'Open') : null);
    }
    if (b.type === 'header') return h('p', { class: 'slack-header' }, b.text?.text ?? '');
    if (b.type === 'context') {
      return h('p', { class: 'slack-context' }, (b.elements ?? []).map((e) => slackText(e)));
    }
    if (b.type === 'actions') {
      return h('p', null, (b.elements ?? []).map((e) => h('span', { class: 'sketch-button' }, e.text?.text ?? '')));
    }
    if (b.type === 'divider') return h('hr');
    return null;
  });
  return h('div', { class: 'sketch-slack' },
    appHeader('Herald', 'APP'),
    blocks.length ? parts : h('p', null, mrkdwn(body.text ?? '')));
}

function slackText(t) {
  if (!t) return null;
  return h('span', null, t.type === 'mrkdwn' ? mrkdwn(t.text ?? '') : t.text ?? '');
}

function teamsMessage(body) {
  const card = body.attachments?.[0]?.content ?? body;
  const items = (list) => (Array.isArray(list) ? list : []).map((item) => {
    if (item.type === 'TextBlock') {
      const cls = ['teams-text', item.size ? `size-${String(item.size).toLowerCase()}` : '', item.weight === 'Bolder' ? 'bold' : '', item.isSubtle ? 'subtle' : ''].join(' ');
      return h('p', { class: cls }, markdown(item.text ?? ''));
    }
    if (item.type === 'FactSet') {
      return h('dl', { class: 'teams-facts' }, (item.facts ?? []).map((f) => h('div', null, h('dt', null, f.title ?? ''), h('dd', null, markdown(f.value ?? '')))));
    }
    if (item.type === 'Container') return h('div', null, items(item.items));
    if (item.type === 'ColumnSet') return h('div', { class: 'teams-columns' }, (item.columns ?? []).map((c) => h('div', null, items(c.items))));
    return null;
  });
  return h('div', { class: 'sketch-teams' },
    appHeader('Workflows', 'via Herald'),
    h('div', { class: 'teams-card' },
      items(card.body),
      Array.isArray(card.actions) && card.actions.length
        ? h('p', { class: 'teams-actions' }, card.actions.map((a) => h('span', { class: 'sketch-button' }, a.title ?? '')))
        : null));
}

function mattermostPost(body) {
  return h('div', { class: 'sketch-mattermost' },
    appHeader(body.username || 'Herald', 'BOT'),
    h('div', { class: 'mm-text' }, markdown(body.text ?? '')));
}

function trelloCard(body) {
  return h('div', { class: 'sketch-trello' },
    h('div', { class: 'trello-card' },
      h('p', { class: 'trello-name' }, body.name ?? ''),
      body.desc ? h('div', { class: 'trello-desc' }, markdown(body.desc)) : null));
}

// ---- a safe sketch of Slack mrkdwn and Markdown, as DOM nodes -----------------------------------

/** Slack mrkdwn: <url|label>, *bold*, _italic_, ~strike~, `code`; &amp; &lt; &gt; as characters. */
function mrkdwn(text) {
  const unescape = (s) => s.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
  return lines(text, (line) => inline(line, [
    [/<([^>|]+)\|([^>]+)>/, (m) => h('span', { class: 'sketch-link', title: unescape(m[1]) }, unescape(m[2]))],
    [/<(https?:[^>]+)>/, (m) => h('span', { class: 'sketch-link' }, unescape(m[1]))],
    [/<!(channel|here|everyone)>/, (m) => h('span', { class: 'mention' }, `@${m[1]}`)],
    [/\*([^*\n]+)\*/, (m) => h('strong', null, unescape(m[1]))],
    [/_([^_\n]+)_/, (m) => h('em', null, unescape(m[1]))],
    [/~([^~\n]+)~/, (m) => h('s', null, unescape(m[1]))],
    [/`([^`\n]+)`/, (m) => h('code', null, unescape(m[1]))],
  ], unescape));
}

/** Markdown as chat clients show it: [label](url), **bold**, *italic*, _italic_, ~~strike~~, `code`. */
function markdown(text) {
  const unescape = (s) => s.replace(/\\([\\`*_{}[\]()#+\-.!~|>])/g, '$1');
  return lines(String(text), (line) => {
    const bullet = /^\s*[-*] /.test(line);
    const body = bullet ? line.replace(/^\s*[-*] /, '') : line;
    return [bullet ? '• ' : '', inline(body, [
      [/\[([^\]]*)\]\(([^)\s]+)\)/, (m) => h('span', { class: 'sketch-link', title: m[2] }, unescape(m[1]))],
      [/\*\*([^*\n]+)\*\*/, (m) => h('strong', null, unescape(m[1]))],
      [/~~([^~\n]+)~~/, (m) => h('s', null, unescape(m[1]))],
      [/(?<![\\\w])\*([^*\n]+)\*/, (m) => h('em', null, unescape(m[1]))],
      [/(?<![\\\w])_([^_\n]+)_/, (m) => h('em', null, unescape(m[1]))],
      [/`([^`\n]+)`/, (m) => h('code', null, m[1])],
    ], unescape)];
  });
}

function lines(text, each) {
  const out = [];
  String(text).split('\n').forEach((line, i) => {
    if (i) out.push(h('br'));
    out.push(each(line));
  });
  return out;
}

/** Splits `text` at the earliest match of any rule, drawing matches with the rule. */
function inline(text, rules, plain) {
  const out = [];
  let rest = text;
  for (let guard = 0; rest && guard < 500; guard += 1) {
    let best = null;
    for (const [re, draw] of rules) {
      const m = re.exec(rest);
      if (m && (best === null || m.index < best.m.index)) best = { m, draw };
    }
    if (!best) break;
    if (best.m.index > 0) out.push(plain(rest.slice(0, best.m.index)));
    out.push(best.draw(best.m));
    rest = rest.slice(best.m.index + best.m[0].length);
  }
  if (rest) out.push(plain(rest));
  return out;
}
