// The console's webhook detail page: facts, health (health.js), the signing secret, tests,
// recovery, and the delivery log with each delivery's attempts.

import { api, mapLimit } from './api.js';
import { h, localTime, relativeTime, replace, timeEl, toLocalInputValue } from './dom.js';
import { healthPanel } from './health.js';
import { flash, testResult } from './form.js';
import {
  attemptItem, busy, clearError, enabledBadge, errorBox, eventChips, eventTypes, field, focusHeading,
  healthFact, humanMessage, joinDots, loading, platformLabel, relTime, sentence, showError,
  statusBadge, subName, swap,
} from './views.js';

export async function detailView(ctx, id) {
  const enc = encodeURIComponent(id);
  const title = h('h1', { tabindex: '-1' }, 'Webhook');
  ctx.setTitle('Webhook');
  const results = h('div', { class: 'results', role: 'status' });
  const summary = h('div', null, loading('Loading the webhook…'));
  const toolbar = h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Webhook actions' });
  const exampleBox = h('div', { class: 'send-example' });
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
    exampleBox,
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
    if (sub.filter) facts.push(['Filter', h('code', { class: 'filter-json-text' }, JSON.stringify(sub.filter))]);
    if (sub.template) facts.push(['Message template', h('pre', { class: 'mono template-text' }, sub.template)]);
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
    renderExample();
  }

  // "Send example": one of the catalog's example events, of a type this webhook subscribes to,
  // sent now like the test event and answered the same way.
  async function renderExample() {
    let types;
    try {
      types = await eventTypes();
    } catch {
      return; // The catalog failed to load: the test event still works.
    }
    if (!ctx.alive() || !sub) return;
    const usable = types.filter((t) => t.example && !t.operational && t.name !== 'webhook.test'
      && sub.events.some((p) => matchesPattern(p, t.name)));
    if (usable.length === 0) {
      replace(exampleBox);
      return;
    }
    const current = exampleBox.querySelector('select')?.value;
    const pick = h('select', { id: 'example-type', dataset: { key: 'example-type' } },
      usable.map((t) => h('option', { value: t.name, selected: t.name === current }, t.name)));
    const send = h('button', { type: 'button', class: 'btn', dataset: { key: 'send-example' } }, 'Send example');
    send.addEventListener('click', () => busy(send, async () => {
      replace(results, h('p', { class: 'loading' }, `Sending an example ${pick.value} event…`));
      let result = null;
      let error = null;
      try {
        result = await api.test(id, pick.value);
      } catch (err) {
        error = err;
      }
      if (!ctx.alive()) return;
      replace(results, testResult(result, error, pick.value));
      refreshLog();
    }));
    swap(exampleBox, h('label', { for: 'example-type' }, 'Example event'), pick, send);
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

/** Whether a subscription pattern (`document.created`, `document.*`, `*`) names `type`. */
function matchesPattern(pattern, type) {
  if (pattern === '*') return !type.startsWith('herald.');
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}
