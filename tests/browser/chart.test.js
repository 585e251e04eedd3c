// Unit tests of the delivery-health chart's arithmetic (web/chart.js), without a browser. The file
// is loaded as a module from its text: web/ has no package.json to mark it as one.

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const source = await fs.readFile(path.join(here, '..', '..', 'web', 'chart.js'), 'utf8');
const { countsText, layoutChart, niceMax } = await import(`data:text/javascript,${encodeURIComponent(source)}`);

/** Stats in the endpoint's shape: hourly buckets from `counts` ([succeeded, retrying, failed]). */
function stats(counts) {
  const from = Date.parse('2026-12-05T10:00:00Z');
  return {
    window: counts.length > 24 ? '7d' : '24h',
    bucket_seconds: 3600,
    buckets: counts.map(([succeeded, retrying, failed], i) => ({
      start: new Date(from + i * 3600 * 1000).toISOString(), succeeded, retrying, failed, attempts: succeeded + retrying + failed,
    })),
  };
}

describe('delivery-health chart', () => {
  test('the scale is the next 1, 2 or 5 × 10ⁿ at or above the busiest hour', () => {
    assert.deepEqual([0, 1, 3, 7, 12, 100, 101, 4999].map(niceMax), [1, 1, 5, 10, 20, 100, 200, 5000]);
  });

  test('each hour is one bar: succeeded, retrying, failed stacked upwards, labelled in words', () => {
    const counts = Array.from({ length: 24 }, () => [0, 0, 0]);
    counts[3] = [3, 1, 2];
    counts[23] = [10, 0, 0];
    const layout = layoutChart(stats(counts), { height: 180, top: 10, bottom: 24 });
    assert.equal(layout.bars.length, 24);
    assert.equal(layout.max, 10);
    const bar = layout.bars[3];
    assert.deepEqual(bar.segments.map((s) => [s.key, s.value]), [['succeeded', 3], ['retrying', 1], ['failed', 2]]);
    const base = layout.plot.y + layout.plot.height;
    assert.equal(bar.segments[0].y + bar.segments[0].height, base, 'succeeded sits on the baseline');
    for (let i = 1; i < bar.segments.length; i += 1) {
      const below = bar.segments[i - 1];
      assert.ok(Math.abs(bar.segments[i].y + bar.segments[i].height - below.y) < 1e-9, 'stacked without gaps');
    }
    assert.ok(Math.abs(bar.segments.reduce((n, s) => n + s.height, 0) - 0.6 * layout.plot.height) < 1e-9);
    assert.match(bar.label, /: 3 succeeded, 1 retrying, 2 failed$/);
    assert.equal(layout.bars[23].segments[0].height, layout.plot.height, 'the busiest hour fills the plot');
    assert.deepEqual(layout.bars[0].segments, []);
    assert.match(layout.bars[0].label, /0 succeeded, 0 retrying, 0 failed/);
    assert.ok(layout.bars.every((b, i) => i === 0 || b.x > layout.bars[i - 1].x), 'oldest first, left to right');
    assert.equal(layout.ticks.length, 4);
  });

  test('one delivery among thousands still shows, and a week has a tick per day', () => {
    const counts = Array.from({ length: 168 }, () => [0, 0, 0]);
    counts[0] = [4000, 0, 0];
    counts[100] = [0, 0, 1];
    const layout = layoutChart(stats(counts));
    assert.equal(layout.bars.length, 168);
    assert.ok(layout.bars[100].segments[0].height >= 2);
    assert.ok(layout.bars.every((b) => b.x >= layout.plot.x && b.x + b.width <= layout.plot.x + layout.plot.width + 1e-9));
    assert.equal(layout.ticks.length, 7);
    assert.equal(countsText({ succeeded: 2 }), '2 succeeded, 0 retrying, 0 failed');
  });

  test('no buckets draw no bars', () => {
    const layout = layoutChart({ buckets: [] });
    assert.deepEqual(layout.bars, []);
    assert.equal(layout.max, 1);
  });
});
