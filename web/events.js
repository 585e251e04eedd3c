// The Events pages: the tenant's recent events, newest first, with how their deliveries stand
// (GET /v1/events), and one event with its payload and each delivery (GET /v1/events/{id}).
// Routes: #/events, #/events/<id>.

import { api, mapLimit } from './api.js';
import { h, relativeTime, replace, timeEl } from './dom.js';
import {
  attemptItem, errorBox, eventTypes, focusHeading, heading, humanMessage, joinDots, loading,
  relTime, sentence, statusBadge, subName,
} from './views.js';

const PAGE = 25;

/** "2 delivered · 1 failed · 0 pending", or why there is nothing to count. */
export function summaryText(d) {
  if (!d || !d.total) return 'Sent to no webhook';
  return `${d.succeeded} delivered · ${d.failed} failed · ${d.pending} pending`;
}

/** The colour of a summary; its words say the same. */
function summaryKind(d) {
  if (!d || !d.total) return 'muted';
  if (d.failed) return 'bad';
  if (d.pending) return 'warn';
  return 'ok';
}

function summaryBadge(d) {
  return h('span', { class: `badge badge-${summaryKind(d)}` }, summaryText(d));
}

const eventHref = (id) => `#/events/${encodeURIComponent(id)}`;

// ---- the list -----------------------------------------------------------------------------------

export function eventsView(ctx) {
  const select = h('select', { id: 'event-type-filter', name: 'type' }, h('option', { value: '' }, 'All event types'));
  const filter = h('form', { class: 'filter inline', role: 'search', 'aria-label': 'Filter events' },
    h('label', { for: 'event-type-filter' }, 'Event type'),
    select,
    h('button', { type: 'submit', class: 'btn btn-small' }, 'Filter'));
  const body = h('div', null, loading('Loading events…'));
  const more = h('button', { type: 'button', class: 'btn', hidden: true }, 'Load more events');
  replace(ctx.main,
    heading(ctx, 'Events'),
    h('p', { class: 'lead' },
      'Every event Herald accepted, newest first, and how its deliveries stand. Open one to see its payload and each delivery. Updates by itself while this page is open.'),
    filter,
    body,
    more);
  focusHeading(ctx);

  let type = '';
  let events = [];
  let cursor = null;
  let signature = '';
  let timer = 0;

  eventTypes().then((types) => {
    if (!ctx.alive()) return;
    for (const t of types) select.append(h('option', { value: t.name }, t.name));
  }).catch(() => {
    // The filter still offers "All event types"; the list reports errors.
  });

  function render() {
    if (events.length === 0) {
      replace(body, h('div', { class: 'empty card' },
        h('h2', null, type ? `No ${type} events yet` : 'No events yet'),
        h('p', null, 'Events appear here as a source application sends them to Herald (POST /v1/events).')));
      return;
    }
    replace(body, h('ol', { class: 'event-list card', 'aria-label': 'Events, newest first' }, events.map((e) => h('li', { class: 'event-row' },
      h('h2', null, h('a', { href: eventHref(e.id) }, h('code', null, e.type))),
      h('p', { class: 'meta' }, summaryBadge(e.deliveries), ' ', relTime(e.timestamp)),
      h('p', { class: 'ids' }, 'Event ', h('code', null, e.id))))));
  }

  // Loads the first `count` events again (or the first page), so statuses stay current.
  async function reload(count = PAGE) {
    clearTimeout(timer);
    const asked = type;
    try {
      const page = await api.listEvents({ limit: Math.min(100, Math.max(PAGE, count)), type: asked || undefined });
      if (!ctx.alive() || asked !== type) return;
      events = page.data;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      const fresh = JSON.stringify(page);
      if (fresh !== signature) {
        signature = fresh;
        render();
      } else {
        // Only the relative times move on.
        for (const t of body.querySelectorAll('time[data-relative]')) t.textContent = relativeTime(t.dateTime);
      }
      // Past a hundred, the older pages stay as they were loaded.
      if (events.length <= 100) schedule(events.some((e) => e.deliveries?.pending) ? 2000 : 5000);
    } catch (err) {
      if (!ctx.alive()) return;
      if (!signature) replace(body, errorBox(err, () => reload(count)));
      schedule(15000);
    }
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!ctx.alive()) return;
      if (document.visibilityState === 'hidden') schedule(ms);
      else reload(events.length);
    }, ms);
  }
  ctx.onCleanup(() => clearTimeout(timer));

  filter.addEventListener('submit', (e) => {
    e.preventDefault();
    type = select.value;
    signature = '';
    events = [];
    replace(body, loading('Loading events…'));
    reload();
  });

  more.addEventListener('click', async () => {
    if (!cursor) return;
    clearTimeout(timer);
    try {
      const page = await api.listEvents({ limit: PAGE, cursor, type: type || undefined });
      if (!ctx.alive()) return;
      events = events.concat(page.data);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      signature = '';
      render();
      if (!cursor) body.querySelector('li:last-child a')?.focus();
    } catch (err) {
      if (ctx.alive()) ctx.toast(humanMessage(err), 'bad');
    }
    if (ctx.alive() && events.length <= 100) schedule(5000);
  });

  reload();
}

// ---- one event ----------------------------------------------------------------------------------

export async function eventView(ctx, id) {
  const title = h('h1', { tabindex: '-1' }, 'Event');
  ctx.setTitle('Event');
  const summary = h('div', null, loading('Loading the event…'));
  const payload = h('section', { class: 'card', 'aria-labelledby': 'payload-title' },
    h('h2', { id: 'payload-title' }, 'Payload'));
  const list = h('div', { class: 'log' });
  const deliveries = h('section', { class: 'card deliveries', 'aria-labelledby': 'event-deliveries-title' },
    h('h2', { id: 'event-deliveries-title' }, 'Deliveries'),
    h('p', { class: 'hint' }, 'One per webhook the event was sent to. Updates by itself while a delivery is under way.'),
    list);
  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/events' }, '← Events')),
    title, summary, payload, deliveries);
  focusHeading(ctx);

  const names = new Map(); // subscription id → name, or null when it was deleted
  const attempts = new Map(); // delivery id → { signature, list }
  let signature = '';
  let timer = 0;
  let shownPayload = false;

  async function load() {
    clearTimeout(timer);
    let event;
    try {
      event = await api.getEvent(id);
    } catch (err) {
      if (!ctx.alive()) return;
      if (err.status === 404) {
        title.textContent = 'Event not found';
        replace(summary, h('p', null, 'There is no such event. ', h('a', { href: '#/events' }, 'Back to the events.')));
        payload.remove();
        deliveries.remove();
        return;
      }
      if (!signature) replace(summary, errorBox(err, load));
      schedule(15000);
      return;
    }
    await mapLimit([...new Set(event.deliveries.map((d) => d.subscription_id))].filter((s) => !names.has(s)), 4, async (sub) => {
      try {
        names.set(sub, subName(await api.getSubscription(sub)));
      } catch (err) {
        if (err.status === 404) names.set(sub, null);
      }
    });
    await mapLimit(event.deliveries.filter((d) => d.attempts > 0), 4, async (d) => {
      const sig = `${d.status}/${d.attempts}/${d.updated_at}`;
      if (attempts.get(d.id)?.signature === sig) return;
      const full = await api.delivery(d.id);
      attempts.set(d.id, { signature: sig, list: full.attempts_log ?? [] });
    });
    if (!ctx.alive()) return;
    const fresh = JSON.stringify([event, [...names], [...attempts.values()].map((a) => a.signature)]);
    if (fresh !== signature) {
      signature = fresh;
      render(event);
    }
    if (event.deliveries.some((d) => d.status === 'pending' || d.status === 'retrying')) schedule(2000);
  }

  function render(event) {
    title.replaceChildren(h('code', null, event.type));
    ctx.setTitle(`Event ${event.type}`);
    const counts = {
      total: event.deliveries.length,
      succeeded: event.deliveries.filter((d) => d.status === 'succeeded').length,
      failed: event.deliveries.filter((d) => d.status === 'failed').length,
    };
    counts.pending = counts.total - counts.succeeded - counts.failed;
    replace(summary, h('dl', { class: 'facts card' },
      h('div', null, h('dt', null, 'Deliveries'), h('dd', null, summaryBadge(counts))),
      h('div', null, h('dt', null, 'Accepted'), h('dd', null, timeEl(event.timestamp, { relative: false }), ' (', relTime(event.timestamp), ')')),
      h('div', null, h('dt', null, 'ID'), h('dd', null, h('code', null, event.id)))));
    if (!shownPayload) {
      shownPayload = true;
      payload.append(h('pre', { class: 'payload', tabindex: '0', 'aria-label': 'Payload (JSON)' }, JSON.stringify(event.data, null, 2)));
    }
    if (event.deliveries.length === 0) {
      replace(list, h('p', { class: 'empty' },
        'No webhook subscribed to this event type when it arrived, so Herald did not send it anywhere.'));
      return;
    }
    replace(list, h('ol', { class: 'delivery-list', 'aria-label': 'Deliveries of this event' },
      event.deliveries.map((d) => deliveryItem(d))));
  }

  function deliveryItem(d) {
    const name = names.get(d.subscription_id);
    const webhook = name === null
      ? h('span', null, 'A deleted webhook')
      : h('a', { href: `#/webhooks/${encodeURIComponent(d.subscription_id)}` }, name ?? d.subscription_id);
    const meta = [
      h('span', null, d.attempts === 1 ? '1 attempt' : `${d.attempts} attempts`),
      d.last_status_code ? h('span', null, `last answer HTTP ${d.last_status_code}`) : null,
      d.next_attempt_at && (d.status === 'retrying' || d.status === 'pending')
        ? h('span', null, 'next try ', relTime(d.next_attempt_at))
        : null,
    ].filter(Boolean);
    const tried = attempts.get(d.id)?.list ?? [];
    return h('li', { class: `delivery status-${d.status}` },
      h('div', { class: 'delivery-head' }, h('h3', null, webhook, ' ', statusBadge(d.status))),
      h('p', { class: 'meta' }, joinDots(meta)),
      h('p', { class: 'ids' }, 'Delivery ', h('code', null, d.id)),
      d.last_error && d.status !== 'succeeded' && d.last_error !== `HTTP ${d.last_status_code}`
        ? h('p', { class: 'error-text' }, sentence(d.last_error))
        : null,
      tried.length
        ? h('ol', { class: 'attempts', 'aria-label': `Attempts of the delivery to ${name ?? d.subscription_id}` },
          [...tried].sort((a, b) => b.number - a.number).map((a) => attemptItem(a, d.id)))
        : h('p', { class: 'hint' }, 'Not tried yet.'));
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!ctx.alive()) return;
      if (document.visibilityState === 'hidden') schedule(ms);
      else load();
    }, ms);
  }
  ctx.onCleanup(() => clearTimeout(timer));
  load();
}
