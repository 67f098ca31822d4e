// The officer's view of one home (/officer/home?home=ID): its level and why, the open case with only the actions
// that may come next, who is responsible and the booked visit, the room charts, the sensors and earlier cases.
// The API decides what the officer may see: a home outside their patch is "not found".

import { ago, api, ApiError, day, DEVICE_STATUS_WORDS, el, failed, LEVELS, requireUser, when } from './common.js';
import { caseBody, ownershipProblems } from './cases.js';
import { drawCharts, roomName } from './homecharts.js';

const homeId = new URLSearchParams(location.search).get('home');

function notFound(text) {
  document.getElementById('home-heading').textContent = 'Home not found';
  document.getElementById('address').textContent = text;
  document.getElementById('home').hidden = true;
}

function showLevel(home) {
  const level = home.case && home.case.emergency ? 'emergency' : home.damp.level;
  const words = LEVELS[level] || { label: level, plain: level };
  const badge = document.getElementById('level-badge');
  badge.className = `badge badge--${level}`;
  badge.textContent = `${words.label}: ${words.plain}`;
  document.getElementById('reasons').replaceChildren(...(home.damp.reasons || []).map((r) => el('li', {}, r)));
  document.getElementById('assessed').textContent = home.damp.assessed_at ? `Last assessed ${when(home.damp.assessed_at)}.` : '';
}

function showSensors(home) {
  const list = document.getElementById('sensors');
  list.replaceChildren(...home.sensors.map((s) => el('li', { class: s.status === 'online' ? null : 'overdue' },
    el('strong', {}, roomName(s)), ` (${s.id}): ${DEVICE_STATUS_WORDS[s.status] || s.status}, last reading ${ago(s.last_seen)}`)));
  if (!home.sensors.length) list.append(el('li', {}, 'No sensors are fitted.'));
}

async function showCases() {
  const [cases, patches] = await Promise.all([
    api(`/api/v1/damp/cases?home_id=${encodeURIComponent(homeId)}&limit=50`),
    api('/api/v1/damp/patches'),
  ]);
  const open = cases.find((c) => c.status !== 'closed');
  const box = document.getElementById('case');
  if (open) {
    const officers = (patches.find((p) => p.patch === open.patch) || { officers: [] }).officers;
    box.className = `case case--page${ownershipProblems(open).length ? ' is-unowned' : ''}`;
    box.dataset.case = open.id;
    box.replaceChildren(el('h3', {}, `Case ${open.id}`), ...caseBody(open, officers, showCases).filter(Boolean));
  } else {
    box.className = 'case case--page';
    box.replaceChildren(el('p', {}, 'No open case for this home.'));
  }
  const past = cases.filter((c) => c.status === 'closed');
  const list = document.getElementById('past');
  list.replaceChildren(...past.map((c) => el('li', {}, `Case ${c.id}: opened ${day(c.opened_at)}, closed ${day(c.closed_at)}`,
    c.history.length ? ` — ${c.history[c.history.length - 1].note || c.history[c.history.length - 1].what}` : '')));
  if (!past.length) list.append(el('li', {}, 'None.'));
}

const who = await requireUser(['officer', 'admin']);
if (who) {
  if (!homeId) {
    notFound('Choose a home from the list of homes.');
  } else {
    try {
      const home = await api(`/api/v1/homes/${encodeURIComponent(homeId)}`);
      document.getElementById('home-heading').textContent = home.address || `Home ${home.id}`;
      document.title = `${home.address || home.id} – Placewatch`;
      document.getElementById('address').textContent = `${home.id}${home.patch ? `, patch ${home.patch}` : ''}`;
      document.getElementById('home').hidden = false;
      showLevel(home);
      showSensors(home);
      await showCases();
      document.getElementById('range').addEventListener('change', () => drawCharts(home).catch(failed));
      await drawCharts(home);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
        notFound('We could not find that home, or it is not in your patch.');
      } else {
        failed(err);
      }
    }
  }
}
