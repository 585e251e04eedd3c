// The delivery-health chart's arithmetic, kept apart from the DOM so that it can be unit-tested:
// one stacked bar per hour (succeeded at the bottom, then retrying, then failed), scaled to the
// busiest hour, each with a label that says all its counts in words (the colours only repeat it).

/** The stacked series, bottom first. */
export const SERIES = [
  { key: 'succeeded', label: 'succeeded' },
  { key: 'retrying', label: 'retrying' },
  { key: 'failed', label: 'failed' },
];

/** The smallest of 1, 2, 5 × 10ⁿ that is at least `max` (and at least 1). */
export function niceMax(max) {
  if (!(max > 1)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= max) return step * power;
  }
  return 10 * power;
}

/** "3 succeeded, 0 retrying, 1 failed" for one bucket. */
export function countsText(bucket) {
  return SERIES.map((s) => `${bucket[s.key] ?? 0} ${s.label}`).join(', ');
}

const pad = (n) => String(n).padStart(2, '0');

/**
 * The local clock time of a bucket's start, "14:00"; with `day` 'long', "Sun, 6 Dec 14:00"; with
 * `day` 'short', "Sun 14:00".
 */
export function hourText(iso, { day = null } = {}) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (!day) return clock;
  const date = day === 'short'
    ? d.toLocaleDateString(undefined, { weekday: 'short' })
    : d.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
  return `${date} ${clock}`;
}

/**
 * Where everything goes, in the SVG's own units: `{ width, height, plot, max, bars, ticks }`.
 * Each bar has its bucket's `label` ("14:00–15:00: 3 succeeded, 0 retrying, 1 failed") and its
 * non-empty `segments` ({ key, value, x, y, width, height }), stacked upwards from the baseline.
 * A non-zero count is never thinner than `minSegment`, so one delivery among thousands still shows.
 */
export function layoutChart(stats, {
  width = 720, height = 180, left = 40, right = 8, top = 10, bottom = 24, minSegment = 2,
} = {}) {
  const buckets = stats?.buckets ?? [];
  const plot = { x: left, y: top, width: width - left - right, height: height - top - bottom };
  const totals = buckets.map((b) => SERIES.reduce((n, s) => n + (b[s.key] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const slot = buckets.length ? plot.width / buckets.length : plot.width;
  const barWidth = Math.max(1, slot * (buckets.length > 48 ? 0.8 : 0.66));
  const seconds = stats?.bucket_seconds ?? 3600;
  const long = buckets.length > 24;
  const bars = buckets.map((b, i) => {
    const x = plot.x + i * slot + (slot - barWidth) / 2;
    let y = plot.y + plot.height;
    const segments = [];
    for (const s of SERIES) {
      const value = b[s.key] ?? 0;
      if (!value) continue;
      const h = Math.min(y - plot.y, Math.max(minSegment, (value / max) * plot.height));
      y -= h;
      segments.push({ key: s.key, value, x, y, width: barWidth, height: h });
    }
    const end = new Date(Date.parse(b.start) + seconds * 1000).toISOString();
    const range = `${hourText(b.start, { day: long ? 'long' : null })}–${hourText(end)}`;
    return { start: b.start, x, width: barWidth, total: totals[i], segments, label: `${range}: ${countsText(b)}` };
  });
  // Four or so labels under the axis: every 6 hours of a day, every day of a week.
  const every = long ? 24 : 6;
  const ticks = [];
  buckets.forEach((b, i) => {
    if (i % every === 0) ticks.push({ x: plot.x + i * slot, text: hourText(b.start, { day: long ? 'short' : null }) });
  });
  return { width, height, plot, max, bars, ticks };
}
