// What every page shares: the session (a bearer token in sessionStorage), calls to the API, times in UK time,
// building DOM safely (text only, never HTML strings), labels for levels, actions and statuses.

import {
  ACTION_LABELS, ACTIVE, ACTOR_LABELS, EVENT_LABELS, RUN_ACTIONS, STATUS_LABELS, TREATING,
} from './gritting_words.js';
import { CASE_STATUS_TEXT, DEVICE_STATUS_LABELS, DEVICE_STATUS_WORDS, LEVELS } from './damp_words.js';

const TOKEN_KEY = 'placewatch.token';
export const ZONE = 'Europe/London';

// -- session ----------------------------------------------------------------------------------------

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function keepToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function detailText(body, status) {
  if (body && typeof body === 'object' && 'detail' in body) {
    const d = body.detail;
    if (typeof d === 'string') return d;
    if (Array.isArray(d)) return d.map((x) => x.msg || JSON.stringify(x)).join('; ');
    if (d && typeof d === 'object') return [d.reason, d.line ? `(line ${d.line})` : ''].filter(Boolean).join(' ');
  }
  if (typeof body === 'string' && body) return body.slice(0, 300);
  return `The server answered ${status}.`;
}

export function loginUrl() {
  return '/login?next=' + encodeURIComponent(location.pathname + location.search);
}

// A call to the API with the bearer token. A 401 means the session has ended: back to the sign-in page.
export async function api(path, { method = 'GET', body, headers = {}, auth = true } = {}) {
  const h = { Accept: 'application/json', ...headers };
  const t = token();
  if (auth && t) h.Authorization = `Bearer ${t}`;
  let payload = body;
  if (body !== undefined && !(body instanceof URLSearchParams) && typeof body !== 'string' && !(body instanceof Blob)) {
    payload = JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, { method, headers: h, body: payload, credentials: 'same-origin', cache: 'no-store' });
  const type = r.headers.get('content-type') || '';
  const data = type.includes('json') ? await r.json().catch(() => null) : await r.text();
  if (r.status === 401 && auth) {
    signOut();
    location.assign(loginUrl());
    throw new ApiError(401, 'Your session has ended: please sign in again.');
  }
  if (!r.ok) throw new ApiError(r.status, detailText(data, r.status));
  return data;
}

// The signed-in user (from the API, so an expired token is caught at once), or a trip to the sign-in page.
// With roles, a user of another role is told this page is not for them (and null is returned).
export async function requireUser(roles) {
  if (!token()) {
    location.assign(loginUrl());
    return new Promise(() => {});
  }
  const who = await api('/api/v1/auth/me');
  showSession(who);
  if (roles && !roles.includes(who.role)) {
    const main = document.getElementById('main');
    main.replaceChildren(
      el('h1', { text: 'This page is not for your account' }),
      el('p', {}, `You are signed in as ${who.name} (${ROLE_NAMES[who.role] || who.role}). `, el('a', { href: homeFor(who), text: 'Go to your page' }), '.'),
    );
    return null;
  }
  return who;
}

// The signed-in user if there is one (for pages anyone may see); an ended session is quietly forgotten.
export async function optionalUser() {
  if (!token()) return null;
  try {
    const r = await fetch('/api/v1/auth/me', { headers: { Authorization: `Bearer ${token()}` }, cache: 'no-store' });
    if (!r.ok) {
      signOut();
      markNav();
      return null;
    }
    const who = await r.json();
    showSession(who);
    return who;
  } catch {
    return null;
  }
}

export const ROLE_NAMES = { admin: 'administrator', highways: 'highways', officer: 'housing officer', tenant: 'tenant' };

export function homeFor(who) {
  return { admin: '/admin', highways: '/highways', officer: '/officer', tenant: '/tenant' }[who.role] || '/';
}

// The header: who is signed in, a sign-out button, and only the links of pages for their role.
export function showSession(who) {
  const box = document.getElementById('session');
  if (!box) return;
  const out = el('button', { type: 'button', class: 'button button--secondary', id: 'sign-out' }, 'Sign out');
  out.addEventListener('click', () => {
    signOut();
    location.assign('/');
  });
  box.replaceChildren(el('span', { class: 'session__who' }, `Signed in as ${who.name} (${ROLE_NAMES[who.role] || who.role})`), out);
  for (const li of document.querySelectorAll('#nav li[data-roles]')) {
    li.hidden = !li.dataset.roles.split(' ').includes(who.role);
  }
}

export function markNav() {
  const signIn = document.getElementById('sign-in');
  if (signIn && location.pathname === '/login') signIn.hidden = true;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === location.pathname) a.setAttribute('aria-current', 'page');
  }
  if (!token()) {
    for (const li of document.querySelectorAll('#nav li[data-roles]')) li.hidden = true;
  }
}

// -- DOM --------------------------------------------------------------------------------------------

// el('p', {class: 'x', text: 'safe text'}, child, 'more text'): strings become text nodes, never HTML.
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// A message in the page's live region (read out by screen readers).
export function announce(message, { error = false } = {}) {
  const box = document.getElementById('status');
  if (!box) return;
  box.classList.toggle('is-error', error);
  box.textContent = message;
}

export function failed(err) {
  announce(err instanceof ApiError ? err.message : `Something went wrong: ${err.message || err}`, { error: true });
}

// -- time -------------------------------------------------------------------------------------------

const whenFmt = new Intl.DateTimeFormat('en-GB', {
  timeZone: ZONE, weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});
const dateFmt = new Intl.DateTimeFormat('en-GB', { timeZone: ZONE, weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
const clockFmt = new Intl.DateTimeFormat('en-GB', { timeZone: ZONE, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const partsFmt = new Intl.DateTimeFormat('en-GB', {
  timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

// "Tue 24 Nov, 18:30" in UK time.
export function when(iso) {
  return iso ? whenFmt.format(new Date(iso)) : '–';
}

export function day(iso) {
  return iso ? dateFmt.format(new Date(iso)) : '–';
}

export function clock(iso) {
  return iso ? clockFmt.format(new Date(iso)) : '–';
}

// UK wall-clock time as "YYYY-MM-DD HH:MM:SS", which Plotly draws as given (it has no time zones).
export function ukWall(iso) {
  const p = {};
  for (const part of partsFmt.formatToParts(new Date(iso))) p[part.type] = part.value;
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

export function ago(iso, now = Date.now()) {
  if (!iso) return 'never';
  const mins = Math.round((now - new Date(iso).getTime()) / 60000);
  if (mins < 1) return 'just now';
  if (mins < 60) return `${mins} min ago`;
  const hours = Math.round(mins / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

// -- numbers ----------------------------------------------------------------------------------------

export function degrees(x) {
  return x === null || x === undefined ? '–' : `${Number(x).toFixed(1).replace('-', '−')} °C`;
}

// A road temperature as core.gritting._text.temp writes it in the reasons beside it: always signed near 0 °C,
// where the sign is the decision ('+0.4 °C', '−1.2 °C', '0.0 °C').
export function roadDegrees(x) {
  if (x === null || x === undefined) return '–';
  const v = Number(x);
  if (Math.abs(v) < 0.05) return '0.0 °C';
  return `${v > 0 ? '+' : '−'}${Math.abs(v).toFixed(1)} °C`;
}

export function percent(x, digits = 0) {
  return x === null || x === undefined ? '–' : `${Number(x).toFixed(digits)} %`;
}

// -- words for levels, actions and statuses ---------------------------------------------------------

// The damp levels' words (label, plain, and explain for the tenant), the case statuses' and the device statuses' are
// core's (damp_words.js is written from core/damp.py, core/cases.py and core/devices.py).
export { CASE_STATUS_TEXT, DEVICE_STATUS_LABELS, DEVICE_STATUS_WORDS, LEVELS };

export function levelBadge(level) {
  const l = LEVELS[level] || { label: level };
  return el('span', { class: `badge badge--${level}` }, l.label);
}

// Colour and line style of each gritting action (the style repeats the colour for people who cannot tell them apart);
// the words are core's (gritting_words.js is written from core/gritting/vocab.py).
const ACTION_STYLES = {
  escalate: { colour: '#0b0c0c', dash: 'solid' },
  plough_and_salt: { colour: '#4c2c92', dash: 'solid' },
  salt: { colour: '#a4161a', dash: 'solid' },
  precautionary_salt: { colour: '#d35400', dash: 'dash' },
  monitor: { colour: '#1d4f91', dash: 'dot' },
  none: { colour: '#00703c', dash: 'longdashdot' },
  unknown: { colour: '#505a5f', dash: 'dashdot' },
};
export const ACTIONS = Object.fromEntries(Object.entries(ACTION_STYLES).map(
  ([key, style]) => [key, { label: key === 'unknown' ? 'No decision yet' : ACTION_LABELS[key], ...style }],
));
export { ACTIVE, EVENT_LABELS, RUN_ACTIONS, TREATING };

// Who set a decision's status or took a step: a user's name, or Placewatch itself in core's words.
export function actorName(actor) {
  return ACTOR_LABELS[actor] || actor;
}

export function actionBadge(action) {
  const key = action || 'unknown';
  const a = ACTIONS[key] || { label: key };
  return el('span', { class: `badge badge--act-${key}` }, a.label);
}

export const STATUSES = STATUS_LABELS;

export function statusBadge(status) {
  return el('span', { class: `badge badge--status badge--status-${status}`, dataset: { status } }, STATUSES[status] || status);
}

// "5 working days left", "Overdue: was due 3 working days ago", "12.5 hours left".
export function timeLeft(next) {
  if (!next) return { text: 'No step due', overdue: false };
  if (next.hours_left !== undefined) {
    const h = next.hours_left;
    return h < 0 ? { text: `Overdue by ${Math.abs(h)} hours`, overdue: true } : { text: `${h} hours left`, overdue: false };
  }
  const d = next.working_days_left;
  if (next.overdue) {
    return { text: d < 0 ? `Overdue by ${-d} working ${-d === 1 ? 'day' : 'days'}` : 'Overdue', overdue: true };
  }
  if (d === 0) return { text: 'Due today', overdue: false };
  return { text: `${d} working ${d === 1 ? 'day' : 'days'} left`, overdue: false };
}

markNav();
