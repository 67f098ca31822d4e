// The housing officer's work list: the homes of their patch, most at risk first (the API's order), with the
// main reason, each open case's next deadline and the working days left (overdue in red, and said in words),
// who is responsible for each case (in red when nobody can act on it or nobody was told), and the case actions,
// only those that may come next, each recorded by the API with the officer's name. A home opens the officer's
// home view (/officer/home).

import { api, CASE_STATUS_TEXT, day, el, failed, levelBadge, LEVELS, requireUser, timeLeft } from './common.js';
import { caseBlock, isOverdue, ownershipProblems } from './cases.js';

const REFRESH_MS = 120_000;

function capitalise(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

function homeLevel(h) {
  return h.case && h.case.emergency ? 'emergency' : h.level;
}

function homeRow(h, i, casesById) {
  const c = h.case;
  const next = c && c.next_step;
  const left = timeLeft(next);
  const overdue = Boolean(c && (c.overdue.length || (next && next.overdue)));
  const full = c ? casesById.get(c.id) : null;
  const unowned = Boolean(full && ownershipProblems(full).length);
  const tr = el('tr', { class: [overdue ? 'is-overdue' : '', unowned ? 'is-unowned' : ''].join(' ').trim() || null, dataset: { home: h.id, level: homeLevel(h) } });
  tr.append(
    el('td', { class: 'num' }, String(i + 1)),
    el('td', {}, el('a', { href: `/officer/home?home=${encodeURIComponent(h.id)}` }, h.address || h.id), el('span', { class: 'small' }, h.id)),
    el('td', {}, levelBadge(homeLevel(h)), h.worst_room && !['green', 'insufficient_data'].includes(h.level) ? el('span', { class: 'small' }, `worst: ${h.worst_room}`) : null),
    el('td', {}, h.reason || (LEVELS[h.level] || {}).plain || ''),
    el('td', {}, c ? el('a', { href: `#case-${c.id}` }, `${c.status_text || CASE_STATUS_TEXT[c.status] || c.status} (case ${c.id})`) : 'No open case',
      c && c.escalated ? el('span', { class: 'small overdue' }, 'escalated') : null),
    el('td', { class: unowned ? 'overdue owner' : 'owner' }, c ? (c.officer || 'Nobody') : '–'),
    el('td', {}, next ? [capitalise(next.what), el('span', { class: 'small' }, day(next.due))] : '–'),
    el('td', { class: overdue ? 'overdue days-left' : 'days-left' }, c ? left.text : '–'),
  );
  return tr;
}

// Red banners for the patch: no officer, nobody notified of new cases, cases nobody can act on.
function showPatches(patches) {
  const box = document.getElementById('patch-problems');
  const items = patches.flatMap((p) => p.problems.map((text) => el('li', {}, patches.length > 1 ? `${p.patch}: ${text}` : text)));
  box.replaceChildren(...(items.length ? [el('h2', {}, 'Who looks after these cases'), el('ul', {}, items)] : []));
  box.hidden = !items.length;
}

function summary(homes, cases, patch) {
  const count = (lvl) => homes.filter((h) => h.level === lvl).length;
  const overdue = cases.filter((c) => c.overdue.length).length;
  const unowned = cases.filter((c) => c.owner_problem).length;
  const where = patch ? `in ${patch}` : 'in every patch';
  const parts = [`${homes.length} ${homes.length === 1 ? 'home' : 'homes'} ${where}`, `${count('red')} red`, `${count('watch')} watch`, `${count('advice')} advice`, `${count('green')} green`];
  const extra = [overdue ? `${overdue} overdue` : '', unowned ? `${unowned} with no officer able to act` : ''].filter(Boolean);
  document.getElementById('summary').textContent = `${parts.join(', ')}. ${cases.length} open ${cases.length === 1 ? 'case' : 'cases'}${extra.length ? `, ${extra.join(', ')}` : ''}.`;
}

let who = null;

async function load(focusCase = null) {
  const level = document.getElementById('level-filter').value;
  const [homes, cases, patches] = await Promise.all([
    api(`/api/v1/homes${level ? `?level=${encodeURIComponent(level)}` : ''}`),
    api('/api/v1/damp/cases?status=active&limit=1000'),
    api('/api/v1/damp/patches'),
  ]);
  const casesById = new Map(cases.map((c) => [c.id, c]));
  const officersOf = new Map(patches.map((p) => [p.patch, p.officers]));
  showPatches(patches);
  const tbody = document.getElementById('homes');
  tbody.replaceChildren(...homes.map((h, i) => homeRow(h, i, casesById)));
  if (!homes.length) tbody.append(el('tr', {}, el('td', { colspan: '8' }, 'No homes to show.')));
  const open = new Set([...document.querySelectorAll('#cases details[open]')].map((d) => d.dataset.case));
  if (focusCase !== null) open.add(String(focusCase));
  const want = location.hash.startsWith('#case-') ? location.hash.slice(6) : null;
  if (want) open.add(want);
  // Cases nobody can act on first, then overdue ones, then by the next deadline.
  const byDue = [...cases].sort((a, b) => (ownershipProblems(b).length > 0) - (ownershipProblems(a).length > 0)
    || isOverdue(b) - isOverdue(a)
    || String((a.next_step || {}).due || '9').localeCompare(String((b.next_step || {}).due || '9')));
  const box = document.getElementById('cases');
  box.replaceChildren(...byDue.map((c) => caseBlock(c, open.has(String(c.id)), officersOf.get(c.patch) || [], () => load(c.id))));
  if (!cases.length) box.append(el('p', {}, 'No open cases.'));
  summary(homes, cases, who.patch);
  if (focusCase !== null) {
    const s = document.querySelector(`#case-${focusCase} summary`);
    if (s) s.focus();
  }
}

function openFromHash() {
  if (!location.hash.startsWith('#case-')) return;
  const d = document.getElementById(location.hash.slice(1));
  if (d) {
    d.open = true;
    d.querySelector('summary').focus();
  }
}

who = await requireUser(['officer', 'admin']);
if (who) {
  document.getElementById('level-filter').addEventListener('change', () => load().catch(failed));
  window.addEventListener('hashchange', openFromHash);
  try {
    await load();
    openFromHash();
  } catch (err) {
    failed(err);
  }
  setInterval(() => {
    if (!document.querySelector('#cases form:focus-within')) load().catch(failed);
  }, REFRESH_MS);
}
