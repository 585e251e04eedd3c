// The Herald console: the shell (sign in/out, navigation, hash routing) around the views.
// Routes: #/webhooks, #/webhooks/new, #/webhooks/<id>, #/webhooks/<id>/edit, #/events,
// #/events/<id>, #/event-types, #/event-types/new.

import { api, session, setUnauthorizedHandler } from './api.js';
import { h, replace } from './dom.js';
import { eventTypeFormView, eventTypesView } from './catalog.js';
import { eventView, eventsView } from './events.js';
import { detailView } from './detail.js';
import { formView } from './form.js';
import { humanMessage, listView, notFoundView } from './views.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const toastRegion = document.getElementById('toast');

let generation = 0;
let cleanups = [];
let signInNotice = '';

/**
 * Shows a short message in the polite live region; it fades after a while. A message about the
 * page being left goes with it, unless `keep` (said just before navigating, for the next page).
 */
let toastTimer = 0;
let toastKeep = false;
export function toast(message, kind = 'info', keep = false) {
  clearTimeout(toastTimer);
  toastKeep = keep;
  replace(toastRegion, h('p', { class: `toast toast-${kind}` }, message));
  toastTimer = setTimeout(() => replace(toastRegion), 8000);
}

/** A modal confirmation; resolves true when the user confirms. */
export function confirmDialog({ title, message, confirmLabel, danger = false }) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const titleId = 'confirm-title';
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const ok = h('button', { type: 'button', class: danger ? 'btn btn-danger' : 'btn btn-primary' }, confirmLabel);
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title),
      h('p', null, message),
      h('div', { class: 'actions' }, cancel, ok));
    cancel.addEventListener('click', () => dialog.close('cancel'));
    ok.addEventListener('click', () => dialog.close('ok'));
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      dialog.remove();
      if (previous instanceof HTMLElement && previous.isConnected) previous.focus();
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function signOut(notice = '') {
  session.clear();
  signInNotice = notice;
  if (location.hash && location.hash !== '#/webhooks') navigate('#/webhooks');
  else route();
}

setUnauthorizedHandler(() => {
  if (session.key) signOut('Herald no longer accepts that API key. Sign in again.');
});

document.getElementById('sign-out').addEventListener('click', () => {
  signOut('You are signed out. The API key was removed from this browser tab.');
});

document.querySelector('.skip-link').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});

function context(title) {
  const gen = generation;
  return {
    main,
    toast,
    confirm: confirmDialog,
    navigate,
    alive: () => gen === generation,
    onCleanup: (fn) => cleanups.push(fn),
    setTitle: (t) => {
      document.title = `${t} · Herald`;
    },
    title,
  };
}

function markNav(hash) {
  for (const a of nav.querySelectorAll('a')) {
    const target = a.getAttribute('href');
    const active = hash === target || (['#/webhooks', '#/events', '#/event-types'].includes(target) && hash.startsWith(`${target}/`));
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

const routes = [
  [/^#\/webhooks\/?$/, (ctx) => listView(ctx)],
  [/^#\/webhooks\/new$/, (ctx) => formView(ctx, null)],
  [/^#\/webhooks\/([^/]+)\/edit$/, (ctx, id) => formView(ctx, id)],
  [/^#\/webhooks\/([^/]+)$/, (ctx, id) => detailView(ctx, id)],
  [/^#\/events\/?$/, (ctx) => eventsView(ctx)],
  [/^#\/events\/([^/]+)$/, (ctx, id) => eventView(ctx, id)],
  [/^#\/event-types\/?$/, (ctx) => eventTypesView(ctx)],
  [/^#\/event-types\/new$/, (ctx) => eventTypeFormView(ctx)],
];

function route() {
  generation += 1;
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // A view's cleanup must not stop the next view.
    }
  }
  cleanups = [];
  if (!toastKeep) {
    clearTimeout(toastTimer);
    replace(toastRegion);
  }
  toastKeep = false;
  const ctx = context();
  if (!session.key) {
    nav.hidden = true;
    signInView(ctx);
    return;
  }
  nav.hidden = false;
  const hash = location.hash && location.hash.startsWith('#/') ? location.hash : '#/webhooks';
  markNav(hash);
  for (const [pattern, view] of routes) {
    const m = hash.match(pattern);
    if (m) {
      view(ctx, m[1] ? decodeURIComponent(m[1]) : undefined);
      return;
    }
  }
  notFoundView(ctx);
}

function signInView(ctx) {
  ctx.setTitle('Sign in');
  const error = h('p', { class: 'field-error', id: 'api-key-error', hidden: true });
  const input = h('input', {
    id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', spellcheck: 'false',
    autocapitalize: 'off', required: true, 'aria-describedby': 'api-key-hint',
  });
  const button = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
  const notice = signInNotice ? h('p', { class: 'notice', role: 'status' }, signInNotice) : null;
  signInNotice = '';
  const form = h('form', { class: 'card signin', novalidate: true },
    h('h1', { tabindex: '-1' }, 'Sign in to Herald'),
    notice,
    h('div', { class: 'field' },
      h('label', { for: 'api-key' }, 'API key'),
      h('p', { class: 'hint', id: 'api-key-hint' },
        'Paste your Herald API key (it starts with hk_). ',
        h('code', null, 'herald dev'), ' prints one when it starts. ',
        'The key is kept only in this browser tab and removed when you sign out or close the tab.'),
      input,
      error),
    h('div', { class: 'actions' }, button));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    error.hidden = true;
    input.removeAttribute('aria-invalid');
    input.setAttribute('aria-describedby', 'api-key-hint');
    const fail = (message) => {
      error.textContent = message;
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', 'api-key-hint api-key-error');
      input.focus();
    };
    if (!key) {
      fail('Enter your API key.');
      return;
    }
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      await api.eventTypes(key);
      session.set(key);
      ctx.toast('Signed in.', 'info', true);
      route();
    } catch (err) {
      if (!ctx.alive()) return;
      fail(err.status === 401
        ? 'Herald did not accept this API key. Check that you copied all of it.'
        : humanMessage(err));
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  replace(main, form);
  input.focus();
}

window.addEventListener('hashchange', route);
route();
