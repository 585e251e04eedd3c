// The Herald console in a real browser: headless Chromium against `herald dev` and a receiver,
// both on 127.0.0.1. One person's story, step by step; controls are found by their label and
// role. Screenshots go to test-output/browser/ (git-ignored).
//
// Environment: HERALD_BIN (default target/debug/herald), CHROMIUM_BIN (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  apiClient, eventually, startBrowser, startHerald, startReceiver,
} from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const outDir = path.join(root, 'test-output', 'browser');
const heraldBin = process.env.HERALD_BIN ?? path.join(root, 'target', 'debug', 'herald');
const chromiumBin = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

const STEP_TIMEOUT = 90000;

let herald;
let receiver;
let browser;
let page;
let call;
const pageErrors = [];
const consoleErrors = [];
const requests = [];

// The story's shared facts.
let subId;
let okEventId;
let failEventId;

let broken = false;
/** A step of the story; once one fails, the later ones are skipped (they depend on it). */
function step(name, fn) {
  test(name, { timeout: STEP_TIMEOUT }, async (t) => {
    if (broken) {
      t.skip('an earlier step failed');
      return;
    }
    try {
      await fn(t);
    } catch (err) {
      broken = true;
      const file = `failed-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`;
      await page?.screenshot({ path: path.join(outDir, file), fullPage: true }).catch(() => {});
      throw err;
    }
  });
}

async function shot(name) {
  await page.screenshot({ path: path.join(outDir, name), fullPage: true });
}

/** Waits until `locator`'s visible text matches `pattern`. */
async function expectText(locator, pattern, { timeout = 20000 } = {}) {
  return eventually(async () => {
    const text = await locator.innerText({ timeout: 2000 });
    if (!pattern.test(text)) throw new Error(`text was: ${text.slice(0, 400)}`);
    return text;
  }, { timeout, what: `text ${pattern}` });
}

/** Presses Tab until the focused element's text is `text` (at most 40 times). */
async function tabTo(text) {
  for (let i = 0; i < 40; i += 1) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
    if (focused === text) return;
  }
  throw new Error(`Tab never reached “${text}”`);
}

/** Every form control on the page has a real <label> (or is inside one). */
async function assertAllLabelled() {
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && (!el.labels || el.labels.length === 0))
    .map((el) => el.outerHTML.slice(0, 120)));
  assert.deepEqual(unlabelled, []);
}

function deliveryItem(eventId) {
  return page.getByRole('list', { name: 'Deliveries, newest first' })
    .getByRole('listitem').filter({ hasText: eventId });
}

async function sendEvent(type, data) {
  const r = await call('POST', '/v1/events', { type, data });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  return r.json.id;
}

async function subscriptionCount() {
  const r = await call('GET', '/v1/subscriptions');
  assert.equal(r.status, 200);
  return r.json.data.length;
}

describe('Herald console', () => {
  before(async () => {
    await fs.mkdir(outDir, { recursive: true });
    receiver = await startReceiver();
    herald = await startHerald({ bin: heraldBin, logFile: path.join(outDir, 'herald.log') });
    call = apiClient(herald.url, herald.apiKey);
    browser = await startBrowser({ executablePath: chromiumBin });
    page = browser.context.pages()[0] ?? await browser.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg) => {
      // Chromium logs every 4xx answer as "Failed to load resource"; the story causes some
      // (a wrong key, a bad URL) on purpose. Anything else is a fault of the console.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
        consoleErrors.push(msg.text());
      }
    });
    page.on('request', (req) => requests.push(req.url()));
  }, { timeout: 180000 });

  after(async () => {
    await browser?.stop();
    await herald?.stop();
    await receiver?.stop();
  }, { timeout: 30000 });

  step('the console is served by herald with a strict content security policy', async () => {
    const root = await fetch(`${herald.url}/`, { redirect: 'manual' });
    assert.ok(root.status >= 300 && root.status < 400, `GET / answered ${root.status}`);
    const index = await fetch(`${herald.url}/console/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type'), /^text\/html/);
    const csp = index.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const js = await fetch(`${herald.url}/console/app.js`);
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
  });

  step('sign in with the API key, by keyboard', async () => {
    await page.goto(`${herald.url}/`);
    await page.getByRole('heading', { name: 'Sign in to Herald' }).waitFor();
    const key = page.getByLabel('API key', { exact: true });
    await key.fill('hk_not_the_right_key');
    await key.press('Enter');
    await expectText(page.locator('#api-key-error'), /did not accept this API key/);
    assert.equal(await key.getAttribute('aria-invalid'), 'true');

    await key.fill(herald.apiKey);
    await key.press('Enter');
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    await page.getByText('No webhooks yet').waitFor();
    await page.getByText(/Click “Add webhook”/).waitFor();
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('herald.apiKey'),
      local: localStorage.length,
    }));
    assert.equal(stored.session, herald.apiKey);
    assert.equal(stored.local, 0, 'nothing is kept in localStorage');
  });

  step('add a Custom webhook with two event types; "Save and test" shows success', async () => {
    // By keyboard: Tab reaches "Add webhook", its focus is visible, Enter opens the form.
    await tabTo('Add webhook');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused button shows a focus outline');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Add webhook', level: 1 }).waitFor();
    await assertAllLabelled();
    await page.getByLabel('Name', { exact: true }).fill('Docs receiver');

    const platform = page.getByLabel('Platform', { exact: true });
    const options = await platform.locator('option').allInnerTexts();
    assert.deepEqual(options, ['Slack', 'Mattermost', 'Microsoft Teams', 'Trello', 'Custom']);
    // Trello's own fields appear only for Trello.
    await platform.selectOption({ label: 'Trello' });
    await page.getByLabel('Trello list ID', { exact: true }).waitFor({ state: 'visible' });
    await page.getByLabel('Trello API key', { exact: true }).waitFor({ state: 'visible' });
    await page.getByLabel('Trello token', { exact: true }).waitFor({ state: 'visible' });
    await platform.selectOption({ label: 'Custom' });
    await page.getByLabel('Trello list ID', { exact: true }).waitFor({ state: 'hidden' });

    const events = page.getByRole('group', { name: 'Events' });
    await events.getByLabel('All document events', { exact: true }).waitFor();
    await events.getByLabel('All events', { exact: true }).waitFor();
    await events.getByLabel('document.created', { exact: true }).check();
    await events.getByLabel('article.published', { exact: true }).check();
    await page.getByLabel('Callback URL', { exact: true }).fill(`${receiver.url}/hooks`);
    await page.getByRole('button', { name: 'Save and test', exact: true }).click();

    const result = page.locator('.test-result');
    await page.getByRole('heading', { name: 'Test delivery arrived' }).waitFor({ timeout: 30000 });
    await expectText(result, /HTTP 200/);
    await expectText(result, /\d+ ms/);

    const m = page.url().match(/#\/webhooks\/(sub_[0-9A-Za-z]+)$/);
    assert.ok(m, `the page went to the webhook: ${page.url()}`);
    subId = m[1];
    await page.getByRole('heading', { name: 'Docs receiver', level: 1 }).waitFor();
    await assertAllLabelled();

    const sub = await call('GET', `/v1/subscriptions/${subId}`);
    assert.equal(sub.status, 200);
    assert.equal(sub.json.platform, 'custom');
    assert.equal(sub.json.name, 'Docs receiver');
    assert.equal(sub.json.url, `${receiver.url}/hooks`);
    assert.deepEqual([...sub.json.events].sort(), ['article.published', 'document.created']);
    const test = receiver.received.find((r) => r.json?.type === 'webhook.test');
    assert.ok(test, 'the receiver got the test event');
    // A test send is not a delivery: the health panel has nothing to chart yet, and says so.
    await page.getByRole('region', { name: 'Delivery health' })
      .getByText('No deliveries in the last 24 hours.', { exact: false }).waitFor();
    assert.match(test.headers['webhook-signature'], /^v1,/);
  });

  step('an event sent through the API appears in the delivery log with its attempt', async () => {
    okEventId = await sendEvent('document.created', {
      title: 'Getting started', author: 'Ada', url: 'https://docs.example.com/getting-started',
    });
    const item = deliveryItem(okEventId);
    await expectText(item, /Delivered/);
    await expectText(item, /Attempt 1[\s\S]*HTTP 200/);
    assert.ok(receiver.received.some((r) => r.headers['webhook-id'] === okEventId));
    // The test delivery is in the log too, older than the event.
    const all = await page.getByRole('list', { name: 'Deliveries, newest first' })
      .locator(':scope > li').allInnerTexts();
    assert.ok(all[0].includes(okEventId), 'newest first');
    assert.ok(all.some((t) => t.includes('webhook.test')));
  });

  step('when the receiver fails, the failed attempt and its status show', async () => {
    receiver.answer(500);
    failEventId = await sendEvent('article.published', { title: 'Release notes', author: 'Grace' });
    const item = deliveryItem(failEventId);
    await expectText(item, /Attempt 1[\s\S]*HTTP 500/);
    await expectText(item, /HTTP 500/);
    // The short schedule (500 ms × 3) runs out: the delivery fails alone; the webhook stays enabled.
    await expectText(item, /Failed/, { timeout: 30000 });
    const attempts = await item.getByRole('list').getByRole('listitem').allInnerTexts();
    assert.ok(attempts.length >= 2, `retried: ${attempts.length} attempts`);
    assert.ok(attempts.every((a) => /HTTP 500/.test(a)));
    await page.getByRole('button', { name: 'Disable', exact: true }).waitFor();
    assert.equal(await page.getByText('This webhook is disabled').count(), 0);
  });

  step('after the receiver recovers, "Retry" delivers it', async () => {
    receiver.answer(200);
    const before = receiver.received.filter((r) => r.headers['webhook-id'] === failEventId).length;
    const item = deliveryItem(failEventId);
    await item.getByRole('button', { name: 'Retry', exact: true }).click();
    await expectText(item, /Delivered/, { timeout: 30000 });
    await expectText(item, /HTTP 200/);
    const after = receiver.received.filter((r) => r.headers['webhook-id'] === failEventId);
    assert.ok(after.length > before, 'the receiver got the event again');
    assert.equal(after.at(-1).status, 200);
  });

  step('the Delivery health chart shows the deliveries the story made, per hour, in 24 hours and 7 days', async () => {
    const panel = page.getByRole('region', { name: 'Delivery health' });
    const bars = panel.locator('svg.chart g.bar');
    /** The counts the bars' labels say, summed over every hour. */
    const charted = async () => {
      const labels = await bars.evaluateAll((gs) => gs.map((g) => g.getAttribute('aria-label')));
      const sum = (word) => labels.reduce((n, l) => n + Number((l.match(new RegExp(`(\\d+) ${word}`)) ?? [0, 0])[1]), 0);
      return { hours: labels.length, succeeded: sum('succeeded'), retrying: sum('retrying'), failed: sum('failed') };
    };
    // The story so far: the first event delivered; the second failed (every try answered 500,
    // each but the last scheduled again), then delivered by "Retry". Save-and-test sends are not
    // deliveries and are not counted.
    const failures = receiver.received.filter((r) => r.headers['webhook-id'] === failEventId && r.status === 500).length;
    const expected = { hours: 24, succeeded: 2, retrying: failures - 1, failed: 1 };
    await eventually(async () => assert.deepEqual(await charted(), expected), { what: 'the chart to show the story' });
    // Each bar says its counts in words, as an image with a name and a tooltip.
    const busiest = panel.getByRole('img', { name: /[1-9]\d* succeeded/ }).first();
    await busiest.waitFor();
    assert.match(await busiest.locator('title').textContent(), /\d\d:\d\d–\d\d:\d\d: \d+ succeeded, \d+ retrying, \d+ failed/);
    // The scale: its top value (at least the busiest hour) on the left, four hours along the bottom.
    const axis = await panel.locator('svg.chart text.axis').allTextContents();
    assert.equal(axis.filter((t) => /^\d\d:\d\d$/.test(t)).length, 4, axis.join(' | '));
    assert.ok(Number(axis[0]) >= 2, axis.join(' | '));
    await expectText(panel.locator('[data-fact="success-rate"]'), /^66\.7 %$/);
    await expectText(panel.locator('[data-fact="latency"]'), /^p50 \d+ ms · p95 \d+ ms$/);
    await shot('health.png');

    const week = panel.getByRole('button', { name: '7 days', exact: true });
    await week.click();
    assert.equal(await week.getAttribute('aria-pressed'), 'true');
    await eventually(async () => assert.deepEqual(await charted(), { ...expected, hours: 168 }),
      { what: 'the week to show the same deliveries' });
    await panel.getByText(/over the last 7 days/).waitFor();
    await panel.getByRole('button', { name: '24 hours', exact: true }).click();
    await eventually(async () => assert.equal((await charted()).hours, 24), { what: 'the day again' });
  });

  step('the Events page lists the events with their delivery status, filters by type, and opens one', async () => {
    await page.getByRole('link', { name: 'Events', exact: true }).click();
    await page.getByRole('heading', { name: 'Events', level: 1 }).waitFor();
    const list = page.getByRole('list', { name: 'Events, newest first' });
    const row = (id) => list.getByRole('listitem').filter({ hasText: id });
    await expectText(row(okEventId), /document\.created[\s\S]*1 delivered · 0 failed · 0 pending/);
    await expectText(row(failEventId), /article\.published[\s\S]*1 delivered · 0 failed · 0 pending/);
    const rows = await list.locator(':scope > li').allInnerTexts();
    assert.ok(rows.findIndex((t) => t.includes(failEventId)) < rows.findIndex((t) => t.includes(okEventId)),
      'newest first');
    await assertAllLabelled();

    // The type filter keeps that type alone.
    await page.getByLabel('Event type', { exact: true }).selectOption('article.published');
    await page.getByRole('button', { name: 'Filter', exact: true }).click();
    await eventually(async () => {
      const shown = await list.locator(':scope > li').allInnerTexts();
      assert.ok(shown.length >= 1 && shown.every((t) => t.includes('article.published')), shown.join(' | '));
    }, { what: 'only article.published events' });
    await page.getByLabel('Event type', { exact: true }).selectOption('');
    await page.getByRole('button', { name: 'Filter', exact: true }).click();
    await row(okEventId).waitFor();
    await shot('events.png');
    await page.setViewportSize({ width: 375, height: 812 });
    try {
      await shot('events-phone.png');
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 375, `the events page fits 375 px (it is ${width} px wide)`);
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }

    // Opening one shows its payload and each delivery with its attempts, linked to its webhook.
    await row(okEventId).getByRole('link').click();
    await page.getByRole('heading', { name: 'document.created', level: 1 }).waitFor();
    await expectText(page.locator('pre.payload'), /"title": "Getting started"/);
    const deliveries = page.getByRole('list', { name: 'Deliveries of this event' });
    const item = deliveries.getByRole('listitem').filter({ hasText: 'Docs receiver' }).first();
    await expectText(item, /Delivered[\s\S]*1 attempt[\s\S]*Attempt 1[\s\S]*HTTP 200/);
    await shot('event.png');
    await item.getByRole('link', { name: 'Docs receiver', exact: true }).click();
    await page.getByRole('heading', { name: 'Docs receiver', level: 1 }).waitFor();
  });

  step('a 410 disables the webhook; the page says why, and one button enables it again', async () => {
    const facts = page.locator('dl.facts');
    await expectText(facts, /Health\s*Healthy/);
    receiver.answer(410);
    await page.getByRole('button', { name: 'Send test event', exact: true }).click();
    await page.getByText(/HTTP 410/).first().waitFor({ timeout: 30000 });
    await page.reload();
    await page.getByText('This webhook is disabled').waitFor();
    await expectText(page.locator('.alert-warn'), /410 Gone[\s\S]*Disabled/);
    await expectText(facts, /Health\s*Not delivering/);
    assert.equal((await call('GET', `/v1/subscriptions/${subId}`)).json.enabled, false);

    receiver.answer(200);
    await page.getByRole('button', { name: 'Enable and resend what failed', exact: true }).click();
    await page.getByText(/Webhook enabled: \d+ failed deliver/).waitFor();
    await eventually(async () => assert.equal(await page.getByText('This webhook is disabled').count(), 0),
      { what: 'the disabled notice to go' });
    await expectText(facts, /Health\s*Healthy/);
    const sub = await call('GET', `/v1/subscriptions/${subId}`);
    assert.equal(sub.json.enabled, true);
    assert.equal(sub.json.health.state, 'healthy');
  });

  step('the signing secret can be revealed and rotated', async () => {
    await page.getByRole('button', { name: 'Reveal secret', exact: true }).click();
    const secret = page.getByRole('textbox', { name: 'Signing secret', exact: true });
    const shown = await secret.inputValue();
    const fromApi = await call('GET', `/v1/subscriptions/${subId}/secret`);
    assert.equal(shown, fromApi.json.secret);
    assert.match(shown, /^whsec_/);
    await page.getByRole('button', { name: 'Rotate secret', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Rotate the signing secret?' });
    await dialog.getByRole('button', { name: 'Rotate secret', exact: true }).click();
    await page.getByText(/New secret created/).waitFor();
    await eventually(async () => {
      const now = await secret.inputValue();
      assert.notEqual(now, shown);
      const fresh = await call('GET', `/v1/subscriptions/${subId}/secret`);
      assert.equal(now, fresh.json.secret);
    }, { what: 'the rotated secret' });
  });

  step('edit the webhook, send a test event, recover failed deliveries', async () => {
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    await page.getByRole('heading', { name: 'Edit webhook', level: 1 }).waitFor();
    assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'Docs receiver');
    const events = page.getByRole('group', { name: 'Events' });
    assert.ok(await events.getByLabel('document.created', { exact: true }).isChecked());
    assert.ok(await events.getByLabel('article.published', { exact: true }).isChecked());
    await page.getByText('More options', { exact: true }).click();
    await page.getByLabel('Description', { exact: true }).fill('Release notes for the docs team');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByRole('heading', { name: 'Docs receiver', level: 1 }).waitFor();
    await page.getByText('Release notes for the docs team').waitFor();
    const sub = await call('GET', `/v1/subscriptions/${subId}`);
    assert.equal(sub.json.description, 'Release notes for the docs team');
    assert.deepEqual([...sub.json.events].sort(), ['article.published', 'document.created']);

    await page.getByRole('button', { name: 'Send test event', exact: true }).click();
    await page.getByRole('heading', { name: 'Test delivery arrived' }).waitFor({ timeout: 30000 });

    await page.getByLabel('Failed since', { exact: true }).fill('2020-01-01T00:00');
    await page.getByRole('button', { name: 'Recover failed', exact: true }).click();
    await page.getByText(/No failed deliveries since/).waitFor();
  });

  step('screenshots of the list and the detail page, also at phone width', async () => {
    await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    await expectText(page.locator('.webhook .last'), /Delivered/);
    await shot('list.png');
    await page.getByRole('link', { name: 'Docs receiver' }).click();
    await expectText(deliveryItem(failEventId), /Delivered/);
    await shot('detail.png');

    await page.setViewportSize({ width: 375, height: 812 });
    try {
      await expectText(deliveryItem(failEventId), /Delivered/);
      await shot('detail-phone.png');
      const detailWidth = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(detailWidth <= 375, `the detail page fits 375 px (it is ${detailWidth} px wide)`);
      await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
      await expectText(page.locator('.webhook .last'), /Delivered/);
      await shot('list-phone.png');
      const listWidth = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(listWidth <= 375, `the list fits 375 px (it is ${listWidth} px wide)`);
      await page.getByRole('button', { name: 'Add webhook', exact: true }).click();
      await page.getByRole('heading', { name: 'Add webhook', level: 1 }).waitFor();
      await shot('form-phone.png');
      await page.getByRole('link', { name: 'Cancel', exact: true }).click();
      await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  step('a bad callback URL shows the error beside the field and creates nothing', async () => {
    const count = await subscriptionCount();
    await page.getByRole('button', { name: 'Add webhook', exact: true }).click();
    await page.getByLabel('Name', { exact: true }).fill('Broken');
    await page.getByLabel('Platform', { exact: true }).selectOption({ label: 'Custom' });
    const events = page.getByRole('group', { name: 'Events' });
    await events.getByLabel('document.created', { exact: true }).check();
    const url = page.getByLabel('Callback URL', { exact: true });
    await url.fill('ftp://x');
    await page.getByRole('button', { name: 'Save', exact: true }).click();

    await eventually(async () => assert.equal(await url.getAttribute('aria-invalid'), 'true'),
      { what: 'the URL field to be marked invalid' });
    const describedBy = (await url.getAttribute('aria-describedby')).split(/\s+/);
    const errorId = describedBy.find((id) => id.endsWith('-error'));
    assert.ok(errorId, `the error describes the field: ${describedBy}`);
    const error = page.locator(`[id="${errorId}"]`);
    await expectText(error, /https:\/\//);
    // Beside the field: in the same field block, right under the input.
    const fieldBlock = page.locator('.field').filter({ has: url });
    assert.equal(await fieldBlock.locator('.field-error').count(), 1);
    assert.ok(await fieldBlock.locator('.field-error').isVisible());
    assert.ok(await url.evaluate((el) => el === document.activeElement), 'focus moved to the field');
    await page.getByRole('alert').filter({ hasText: 'The webhook was not saved' }).waitFor();
    await shot('form-error.png');
    assert.equal(await subscriptionCount(), count, 'nothing was created');

    // No event ticked: the error sits with the Events group.
    await url.fill(`${receiver.url}/other`);
    await events.getByLabel('document.created', { exact: true }).uncheck();
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expectText(events, /Choose at least one event/);
    assert.equal(await url.getAttribute('aria-invalid'), null, 'the URL error went away');
    assert.equal(await subscriptionCount(), count, 'still nothing was created');
    await page.getByRole('link', { name: 'Cancel', exact: true }).click();
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
  });

  step('the Event types page lists the catalog; "Add event type" registers one with a schema', async () => {
    await page.getByRole('link', { name: 'Event types', exact: true }).click();
    await page.getByRole('heading', { name: 'Event types', level: 1 }).waitFor();
    const builtin = page.getByRole('list', { name: 'Built in' });
    const published = builtin.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'document.published' }) });
    await published.waitFor();
    await builtin.getByRole('heading', { name: 'webhook.test' }).waitFor();
    await published.getByText('Example data').click();
    await expectText(published.locator('pre'), /"name": "Handbook"/);

    await page.getByRole('button', { name: 'Add event type', exact: true }).click();
    await page.getByRole('heading', { name: 'Add event type', level: 1 }).waitFor();
    await assertAllLabelled();
    await page.getByLabel('Name', { exact: true }).fill('space.archived');
    await page.getByLabel('Description', { exact: true }).fill('A space was archived.');
    const schema = {
      type: 'object',
      required: ['space'],
      properties: { space: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } },
    };
    await page.getByLabel('JSON Schema of the data (optional)').fill(JSON.stringify(schema, null, 2));
    // An example that breaks the schema is refused beside its field, and nothing is added.
    await page.getByLabel('Example data (optional)').fill('{"space": {"name": 5}}');
    await page.getByRole('button', { name: 'Add event type', exact: true }).click();
    await expectText(page.locator('[data-field="example"] .field-error'), /\/space\/name/);
    assert.equal((await call('GET', '/v1/event-types/space.archived')).status, 404);

    await page.getByLabel('Example data (optional)').fill('{"space": {"name": "Old handbook"}, "title": "Old handbook"}');
    await page.getByRole('button', { name: 'Add event type', exact: true }).click();
    await page.getByRole('heading', { name: 'Event types', level: 1 }).waitFor();
    const own = page.getByRole('list', { name: 'Your event types' });
    const archived = own.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'space.archived' }) });
    await archived.getByText('Schema', { exact: true }).waitFor();
    const stored = await call('GET', '/v1/event-types/space.archived');
    assert.equal(stored.status, 200);
    assert.deepEqual(stored.json.schema, schema);
    assert.equal(stored.json.builtin, false);

    // Herald checks events of the type against its schema: 422 with the pointer, nothing stored.
    const bad = await call('POST', '/v1/events', { type: 'space.archived', data: { space: { name: 5 } } });
    assert.equal(bad.status, 422, JSON.stringify(bad.json));
    assert.equal(bad.json.error.code, 'schema_violation');
    assert.equal(bad.json.error.violations[0].pointer, '/space/name');
    assert.equal((await call('POST', '/v1/events', { type: 'space.archived', data: { space: { name: 'Old' } } })).status, 202);

    // The tenant setting: refuse types the catalog does not know.
    const refuse = page.getByLabel('Refuse events of types not in the catalog');
    await refuse.check();
    await page.getByText('Saved: Herald now refuses events').waitFor();
    const unknown = await call('POST', '/v1/events', { type: 'space.renamed', data: {} });
    assert.equal(unknown.status, 422, JSON.stringify(unknown.json));
    assert.equal(unknown.json.error.code, 'unknown_event_type');
    await refuse.uncheck();
    await page.getByText('Saved: Herald accepts events of any type.').waitFor();
    assert.equal((await call('POST', '/v1/events', { type: 'space.renamed', data: {} })).status, 202);
  });

  step('a Slack webhook with a filter and a message template: the preview follows the typing, and the message arrives as previewed', async () => {
    await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
    await page.getByRole('button', { name: 'Add webhook', exact: true }).click();
    await page.getByRole('heading', { name: 'Add webhook', level: 1 }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('Handbook to Slack');
    await page.getByLabel('Platform', { exact: true }).selectOption({ label: 'Slack' });
    await page.getByLabel('Callback URL', { exact: true }).fill(`${receiver.url}/slack`);
    await page.getByRole('group', { name: 'Events' }).getByLabel('document.published', { exact: true }).check();

    // Filter: only the Handbook space.
    await page.getByRole('button', { name: 'Add condition', exact: true }).click();
    await page.getByLabel('Condition 1: field').fill('data.space.name');
    await page.getByLabel('Condition 1: value').fill('Handbook');

    // Without a template the preview shows Herald's standard message for the type's example.
    const preview = page.getByRole('region', { name: 'Message preview' });
    await expectText(preview, /Getting started/);
    const template = page.getByLabel('Message template (optional)');
    await template.fill('{{ data.author.name }} published *{{ data.title }}* in {{ data.space.name }}');
    await expectText(preview, /Ada Lovelace published Getting started in Handbook/);
    assert.equal(await preview.locator('strong').first().innerText(), 'Getting started', 'mrkdwn bold is drawn bold');
    await template.press('End');
    await template.type(' (version {{ data.version }})');
    await expectText(preview, /in Handbook \(version 7\)/);
    // A broken template says where, and the webhook cannot be saved with it.
    await template.fill('{% if data.space %}unfinished');
    await expectText(page.locator('[data-field="template"] .field-error'), /line 1/i);
    await page.locator('.sketch[data-state="failed"]').waitFor();
    const finalTemplate = '{{ data.author.name }} published *{{ data.title }}* in {{ data.space.name }}';
    await template.fill(finalTemplate);
    // The error goes, and the sketch is the message of the template as it now stands.
    await page.locator('.sketch[data-state="ready"]').waitFor();
    await page.locator('[data-field="template"] .field-error').waitFor({ state: 'hidden' });
    assert.match(await preview.innerText(), /Ada Lovelace published Getting started in Handbook$/m);
    await shot('template-preview.png');
    await assertAllLabelled();
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    const m = await eventually(async () => {
      const found = page.url().match(/#\/webhooks\/(sub_[0-9A-Za-z]+)$/);
      if (!found) throw new Error(page.url());
      return found;
    });
    const slackId = m[1];
    await page.getByRole('heading', { name: 'Handbook to Slack', level: 1 }).waitFor();
    const saved = await call('GET', `/v1/subscriptions/${slackId}`);
    assert.equal(saved.json.template, finalTemplate);
    assert.deepEqual(saved.json.filter, { path: 'data.space.name', eq: 'Handbook' });

    // What the preview says is what arrives, byte for byte; the other space's event goes nowhere.
    const data = { title: 'Release checklist', space: { name: 'Handbook' }, author: { name: 'Grace Hopper' } };
    const previewed = await call('POST', '/v1/subscriptions/preview', {
      subscription: { platform: 'slack', template: finalTemplate },
      event: { type: 'document.published', data },
    });
    assert.equal(previewed.status, 200, JSON.stringify(previewed.json));
    const before = receiver.received.length;
    const otherId = await sendEvent('document.published', { ...data, space: { name: 'Guides' } });
    await sendEvent('document.published', data);
    const got = await eventually(async () => {
      const hit = receiver.received.slice(before).find((r) => r.url === '/slack');
      if (!hit) throw new Error('nothing at /slack yet');
      return hit;
    });
    assert.equal(got.body, previewed.json.body);
    const other = await call('GET', `/v1/events/${otherId}`);
    assert.equal(other.status, 200);
    assert.deepEqual(other.json.deliveries, [], 'the filter kept the Guides event from this webhook');

    // "Send example": the type's example, sent now, answered like the test event.
    await page.getByLabel('Example event', { exact: true }).selectOption('document.published');
    await page.getByRole('button', { name: 'Send example', exact: true }).click();
    await page.getByRole('heading', { name: 'Example document.published delivery arrived' }).waitFor({ timeout: 30000 });
    const example = receiver.received.filter((r) => r.url === '/slack').at(-1);
    assert.match(example.body, /Ada Lovelace published/);
    assert.equal((await call('DELETE', `/v1/subscriptions/${slackId}`)).status, 204);
  });

  step('delete the webhook, after confirming', async () => {
    await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
    await page.getByRole('link', { name: 'Docs receiver' }).click();
    await page.getByRole('heading', { name: 'Docs receiver', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: /Delete “Docs receiver”/ });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal((await call('GET', `/v1/subscriptions/${subId}`)).status, 200, 'Cancel keeps it');

    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete webhook', exact: true }).click();
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    await page.getByText('No webhooks yet').waitFor();
    assert.equal((await call('GET', `/v1/subscriptions/${subId}`)).status, 404);
  });

  step('sign out removes the key from the browser', async () => {
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('heading', { name: 'Sign in to Herald' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('herald.apiKey')), null);
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to Herald' }).waitFor();
  });

  step('the page loaded nothing from elsewhere and raised no errors', async () => {
    assert.deepEqual(browser.offHost, []);
    const elsewhere = requests.filter((u) => !u.startsWith(`${herald.url}/`));
    assert.deepEqual(elsewhere, []);
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(consoleErrors, []);
  });
});
