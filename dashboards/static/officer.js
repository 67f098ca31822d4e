// The housing officer's work list: the homes of their patch, most at risk first (the API's order), with the
// main reason, each open case's next deadline and the working days left (overdue in red, and said in words),
// and the case actions, each recorded by the API with the officer's name.

import {
  announce, api, ApiError, CASE_ACTIONS, CASE_STATUSES, day, el, failed, levelBadge, LEVELS, requireUser, timeLeft,
  when,
} from './common.js';

const REFRESH_MS = 120_000;
// [deadline column, words, the step name the API uses in `overdue`]
const STEP_DEADLINES = [
  ['investigate_by', 'Investigate by', 'investigate'],
  ['summary_by', 'Written summary by', 'summary'],
  ['safety_work_by', 'Safety work by', 'safety_work'],
  ['preventative_begin_by', 'Begin preventative work by', 'preventative_begin'],
  ['preventative_physically_started_by', 'Start preventative work on site by', 'preventative_start'],
  ['emergency_by', 'Make safe (emergency) by', 'emergency'],
];

function capitalise(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

function homeLevel(h) {
  return h.case && h.case.emergency ? 'emergency' : h.level;
}

function homeRow(h, i) {
  const c = h.case;
  const next = c && c.next_step;
  const left = timeLeft(next);
  const overdue = Boolean(c && (c.overdue.length || (next && next.overdue)));
  const tr = el('tr', { class: overdue ? 'is-overdue' : null, dataset: { home: h.id, level: homeLevel(h) } });
  tr.append(
    el('td', { class: 'num' }, String(i + 1)),
    el('td', {}, el('a', { href: `/tenant?home=${encodeURIComponent(h.id)}` }, h.address || h.id), el('span', { class: 'small' }, h.id)),
    el('td', {}, levelBadge(homeLevel(h)), h.worst_room && !['green', 'insufficient_data'].includes(h.level) ? el('span', { class: 'small' }, `worst: ${h.worst_room}`) : null),
    el('td', {}, h.reason || (LEVELS[h.level] || {}).plain || ''),
    el('td', {}, c ? el('a', { href: `#case-${c.id}` }, `${CASE_STATUSES[c.status] || c.status} (case ${c.id})`) : 'No open case',
      c && c.escalated ? el('span', { class: 'small overdue' }, 'escalated') : null),
    el('td', {}, next ? [capitalise(next.what), el('span', { class: 'small' }, day(next.due))] : '–'),
    el('td', { class: overdue ? 'overdue days-left' : 'days-left' }, c ? left.text : '–'),
  );
  return tr;
}

function caseBlock(c, open) {
  const next = c.next_step;
  const left = timeLeft(next);
  const overdue = Boolean(c.overdue.length || (next && next.overdue));
  const d = el('details', { class: `case${overdue ? ' is-overdue' : ''}`, id: `case-${c.id}`, open, dataset: { case: c.id } });
  d.append(
    el('summary', {}, `${c.address || c.home_id} — case ${c.id}, ${CASE_STATUSES[c.status] || c.status}`,
      ', ', overdue ? el('span', { class: 'overdue' }, left.text) : next ? left.text : 'no step due'),
  );
  const facts = el('dl', { class: 'route__facts' });
  facts.append(el('dt', {}, 'Level'), el('dd', {}, c.emergency ? levelBadge('emergency') : levelBadge(c.level)));
  facts.append(el('dt', {}, 'Landlord aware'), el('dd', {}, when(c.aware_at)));
  for (const [key, label, step] of STEP_DEADLINES) {
    if (!c[key]) continue;
    const late = c.overdue.includes(step);
    facts.append(el('dt', {}, label), el('dd', { class: late ? 'overdue' : null }, `${day(c[key])}${late ? ' (overdue)' : ''}`));
  }
  d.append(facts);
  d.append(el('h4', {}, 'History'));
  d.append(
    el('ol', { class: 'history' }, c.history.map((e) => el('li', {}, `${when(e.at)}: ${CASE_ACTIONS[e.action] || e.action.replace('_', ' ')} by ${e.actor}`, e.note ? ` — “${e.note}”` : ''))),
  );
  d.append(actionForm(c));
  return d;
}

function actionForm(c) {
  const id = `case-${c.id}`;
  const error = el('p', { class: 'error-text', role: 'alert', hidden: true });
  const select = el('select', { id: `${id}-action`, name: 'action', required: true },
    el('option', { value: '' }, 'Choose an action'),
    Object.entries(CASE_ACTIONS).map(([value, label]) => el('option', { value }, label)));
  const form = el('form', { class: 'form', 'aria-label': `Actions on case ${c.id}` },
    el('div', { class: 'field' }, el('label', { for: `${id}-action` }, 'Record an action'), select),
    el('div', { class: 'field' }, el('label', { for: `${id}-note` }, 'Note (optional)'), el('textarea', { id: `${id}-note`, name: 'note', maxlength: '4000' })),
    error,
    el('button', { type: 'submit', class: 'button' }, 'Record'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!select.value) {
      error.textContent = 'Choose the action to record.';
      error.hidden = false;
      select.focus();
      return;
    }
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const note = form.note.value.trim();
      await api(`/api/v1/damp/cases/${c.id}/actions`, { method: 'POST', body: { action: select.value, note: note || null } });
      const done = CASE_ACTIONS[select.value];
      await load(c.id);
      announce(`Case ${c.id}: “${done}” recorded.`);
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : String(err);
      error.hidden = false;
      button.disabled = false;
    }
  });
  return form;
}

function summary(homes, cases, patch) {
  const count = (lvl) => homes.filter((h) => h.level === lvl).length;
  const overdue = cases.filter((c) => c.overdue.length).length;
  const where = patch ? `in ${patch}` : 'in every patch';
  const parts = [`${homes.length} ${homes.length === 1 ? 'home' : 'homes'} ${where}`, `${count('red')} red`, `${count('watch')} watch`, `${count('advice')} advice`, `${count('green')} green`];
  document.getElementById('summary').textContent = `${parts.join(', ')}. ${cases.length} open ${cases.length === 1 ? 'case' : 'cases'}${overdue ? `, ${overdue} overdue` : ''}.`;
}

let who = null;

async function load(focusCase = null) {
  const level = document.getElementById('level-filter').value;
  const [homes, cases] = await Promise.all([
    api(`/api/v1/homes${level ? `?level=${encodeURIComponent(level)}` : ''}`),
    api('/api/v1/damp/cases?status=active&limit=1000'),
  ]);
  const tbody = document.getElementById('homes');
  tbody.replaceChildren(...homes.map(homeRow));
  if (!homes.length) tbody.append(el('tr', {}, el('td', { colspan: '7' }, 'No homes to show.')));
  const open = new Set([...document.querySelectorAll('#cases details[open]')].map((d) => d.dataset.case));
  if (focusCase !== null) open.add(String(focusCase));
  const want = location.hash.startsWith('#case-') ? location.hash.slice(6) : null;
  if (want) open.add(want);
  const byDue = [...cases].sort((a, b) => (b.overdue.length > 0) - (a.overdue.length > 0)
    || String((a.next_step || {}).due || '9').localeCompare(String((b.next_step || {}).due || '9')));
  const box = document.getElementById('cases');
  box.replaceChildren(...byDue.map((c) => caseBlock(c, open.has(String(c.id)))));
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
