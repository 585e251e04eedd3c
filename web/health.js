// The webhook page's "Delivery health" panel: deliveries per hour over the last 24 hours or 7 days
// as a stacked bar chart in plain inline SVG (chart.js does the arithmetic), the success rate and
// the attempt latency, from GET /v1/subscriptions/{id}/stats. It refreshes itself while shown.

import { api } from './api.js';
import { h, nextId, replace } from './dom.js';
import { layoutChart, SERIES } from './chart.js';

const SVG = 'http://www.w3.org/2000/svg';

const WINDOWS = [
  { value: '24h', label: '24 hours', phrase: 'the last 24 hours' },
  { value: '7d', label: '7 days', phrase: 'the last 7 days' },
];

/** An SVG element; attributes only (the console's policy allows no inline styles). */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const round = (n) => Math.round(n * 10) / 10;

/**
 * The fills: succeeded solid, retrying dotted, failed hatched, so the series differ in shape as
 * well as colour (and the legend shows the same swatches).
 */
function defs(ids) {
  return s('defs', null,
    s('pattern', { id: ids.retrying, width: 4, height: 4, patternUnits: 'userSpaceOnUse' },
      s('rect', { width: 4, height: 4, class: 'fill-retrying' }),
      s('circle', { cx: 2, cy: 2, r: 0.9, class: 'mark' })),
    s('pattern', { id: ids.failed, width: 4, height: 4, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
      s('rect', { width: 4, height: 4, class: 'fill-failed' }),
      s('rect', { width: 1.4, height: 4, class: 'mark' })));
}

function fillOf(key, ids) {
  return key === 'succeeded' ? null : `url(#${ids[key]})`;
}

/** The chart: one <g role="img"> per hour, labelled with all its counts. */
export function drawChart(stats, windowPhrase) {
  const layout = layoutChart(stats);
  const ids = { retrying: nextId('dots'), failed: nextId('hatch') };
  const { plot } = layout;
  const base = plot.y + plot.height;
  const grid = [layout.max, layout.max / 2].map((v) => {
    const y = round(base - (v / layout.max) * plot.height);
    return [
      s('line', { x1: plot.x, x2: plot.x + plot.width, y1: y, y2: y, class: 'grid' }),
      Number.isInteger(v) ? s('text', { x: plot.x - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, String(v)) : null,
    ];
  });
  const bars = layout.bars.map((bar) => s('g', { class: 'bar', role: 'img', 'aria-label': bar.label },
    s('title', null, bar.label),
    // The whole slot takes the pointer, so a short bar's label is easy to hover.
    s('rect', { x: round(bar.x), y: plot.y, width: round(bar.width), height: plot.height, class: 'hit' }),
    bar.segments.map((seg) => s('rect', {
      x: round(seg.x), y: round(seg.y), width: round(seg.width), height: round(seg.height),
      class: `seg seg-${seg.key}`, fill: fillOf(seg.key, ids), 'data-count': seg.value,
    }))));
  const ticks = layout.ticks.map((t) => s('text', { x: round(t.x), y: base + 16, class: 'axis' }, t.text));
  return s('svg', {
    viewBox: `0 0 ${layout.width} ${layout.height}`, class: 'chart',
    role: 'group', 'aria-label': `Deliveries per hour over ${windowPhrase}: succeeded, retrying and failed`,
  },
  defs(ids),
  grid,
  s('line', { x1: plot.x, x2: plot.x + plot.width, y1: base, y2: base, class: 'baseline' }),
  bars,
  ticks);
}

function legend() {
  const ids = { retrying: nextId('dots'), failed: nextId('hatch') };
  return h('ul', { class: 'legend', 'aria-label': 'Legend' }, SERIES.map((series) => h('li', null,
    s('svg', { width: 14, height: 14, viewBox: '0 0 14 14', 'aria-hidden': 'true' },
      defs(ids),
      s('rect', { width: 14, height: 14, class: `seg seg-${series.key}`, fill: fillOf(series.key, ids) })),
    ` ${series.label[0].toUpperCase()}${series.label.slice(1)}`)));
}

function percent(rate) {
  if (rate === null || rate === undefined) return '—';
  const p = rate * 100;
  return `${p === 100 || p === 0 ? p : p.toFixed(1)} %`;
}

function ms(value) {
  return value === null || value === undefined ? '—' : `${value} ms`;
}

/**
 * The panel for webhook `id`. Returns the section element; it loads at once, then every few
 * seconds while the page is visible, and stops when the route changes.
 */
export function healthPanel(ctx, id) {
  let current = '24h';
  let signature = '';
  let timer = 0;
  const body = h('div', { class: 'health-body' }, h('p', { class: 'loading', role: 'status' }, 'Loading delivery health…'));
  const buttons = WINDOWS.map((w) => h('button', {
    type: 'button', class: 'btn btn-small', 'aria-pressed': String(w.value === current), dataset: { window: w.value },
  }, w.label));
  for (const button of buttons) {
    button.addEventListener('click', () => {
      current = button.dataset.window;
      for (const b of buttons) b.setAttribute('aria-pressed', String(b === button));
      signature = '';
      load();
    });
  }
  const section = h('section', { class: 'card health', 'aria-labelledby': 'health-title' },
    h('div', { class: 'section-head' },
      h('h2', { id: 'health-title' }, 'Delivery health'),
      h('div', { class: 'segmented', role: 'group', 'aria-label': 'Time window' }, buttons)),
    body);

  function render(stats) {
    const win = WINDOWS.find((w) => w.value === stats.window) ?? WINDOWS[0];
    const t = stats.totals ?? {};
    const empty = !(t.succeeded || t.failed || t.retrying || t.attempts);
    const facts = h('dl', { class: 'health-facts' },
      h('div', null, h('dt', null, 'Success rate'), h('dd', { dataset: { fact: 'success-rate' } }, percent(t.success_rate))),
      h('div', null, h('dt', null, 'Latency'), h('dd', { dataset: { fact: 'latency' } },
        `p50 ${ms(stats.latency_ms?.p50)} · p95 ${ms(stats.latency_ms?.p95)}`)),
      h('div', null, h('dt', null, 'Deliveries'), h('dd', { dataset: { fact: 'totals' } },
        `${t.succeeded ?? 0} succeeded · ${t.retrying ?? 0} retrying · ${t.failed ?? 0} failed · ${t.attempts ?? 0} attempts`)));
    if (empty) {
      replace(body, facts, h('p', { class: 'empty' },
        `No deliveries in ${win.phrase}. The chart fills in as Herald delivers events to this webhook.`));
      return;
    }
    // On a narrow screen the chart keeps a readable size and scrolls sideways.
    replace(body, facts, h('figure', { class: 'chart-figure' },
      h('div', { class: 'chart-scroll', tabindex: '0', role: 'region', 'aria-label': 'Chart (scrolls sideways on a narrow screen)' },
        drawChart(stats, win.phrase)),
      h('figcaption', null, legend(),
        h('span', { class: 'hint' }, `Deliveries per hour over ${win.phrase}, in your time zone. Success rate counts finished deliveries; latency is per attempt.`))));
  }

  async function load() {
    clearTimeout(timer);
    const asked = current;
    try {
      const stats = await api.stats(id, asked);
      if (!ctx.alive() || asked !== current) return;
      const fresh = JSON.stringify(stats);
      if (fresh !== signature) {
        signature = fresh;
        render(stats);
      }
      schedule(5000);
    } catch (err) {
      if (!ctx.alive() || asked !== current) return;
      if (!signature) {
        replace(body, h('p', { class: 'error-text' }, `Delivery health could not be loaded: ${err.message}`));
      }
      schedule(15000);
    }
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!ctx.alive()) return;
      if (document.visibilityState === 'hidden') schedule(delay);
      else load();
    }, delay);
  }
  ctx.onCleanup(() => clearTimeout(timer));
  load();
  return section;
}
