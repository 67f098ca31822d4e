// A damp and mould case as an officer works on it: deadlines, who is responsible (in red when nobody can act on
// it, or when nobody heard of it), the booked visit, the history in words, and forms that offer only what the API
// says may come next (allowed_actions, from core/cases.py). Used by the officer's list and the officer's home view.

import { announce, api, day, el, levelBadge, timeLeft, when } from './common.js';

// [deadline column, words, the step name the API uses in `overdue`]
const STEP_DEADLINES = [
  ['investigate_by', 'Investigate by', 'investigate'],
  ['summary_by', 'Written summary by', 'summary'],
  ['safety_work_by', 'Safety work by', 'safety_work'],
  ['preventative_begin_by', 'Begin preventative work by', 'preventative_begin'],
  ['preventative_physically_started_by', 'Start preventative work on site by', 'preventative_start'],
  ['emergency_by', 'Make safe (emergency) by', 'emergency'],
];

export function isOverdue(c) {
  return Boolean(c.overdue.length || (c.next_step && c.next_step.overdue));
}

// Problems with who looks after the case, in words (null when there are none).
export function ownershipProblems(c) {
  return [c.owner_problem, c.notice_problem].filter(Boolean);
}

function problemBox(c) {
  const problems = ownershipProblems(c);
  if (!problems.length) return null;
  return el('div', { class: 'error-summary owner-problem', role: 'note' }, problems.map((p) => el('p', {}, p)));
}

// A local date-time input value ("2026-12-03T10:30") for a Date, in the browser's zone (UK for our users).
function localInput(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fieldError() {
  return el('p', { class: 'error-text', role: 'alert', hidden: true });
}

function showError(box, err) {
  box.textContent = err instanceof Error ? err.message : String(err);
  box.hidden = false;
}

// Submit a form to the API: disable its button meanwhile, show the API's words on failure, reload on success.
function wire(form, errorBox, send, onChange) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const message = await send();
      await onChange();
      if (message) announce(message);
    } catch (err) {
      showError(errorBox, err);
      button.disabled = false;
    }
  });
}

function actionForm(c, onChange) {
  const id = `case-${c.id}`;
  const error = fieldError();
  if (!c.allowed_actions.length) return el('p', { class: 'hint' }, 'Nothing more can be recorded on this case.');
  const select = el('select', { id: `${id}-action`, name: 'action', required: true },
    el('option', { value: '' }, 'Choose an action'),
    c.allowed_actions.map((a) => el('option', { value: a.action, dataset: { needsNote: a.needs_note ? '1' : '' } },
      a.needs_note ? `${a.label} (needs a note saying why)` : a.label)));
  const form = el('form', { class: 'form', 'aria-label': `Actions on case ${c.id}` },
    el('div', { class: 'field' }, el('label', { for: `${id}-action` }, 'Record an action'),
      el('p', { class: 'hint small' }, 'Only the steps that can come next are listed.'), select),
    el('div', { class: 'field' }, el('label', { for: `${id}-note` }, 'Note (optional)'), el('textarea', { id: `${id}-note`, name: 'note', maxlength: '4000' })),
    error,
    el('button', { type: 'submit', class: 'button' }, 'Record'));
  wire(form, error, async () => {
    if (!select.value) throw new Error('Choose the action to record.');
    const chosen = c.allowed_actions.find((a) => a.action === select.value);
    const note = form.note.value.trim();
    if (chosen.needs_note && !note) throw new Error('Say in the note why the case is closed before its investigation.');
    await api(`/api/v1/damp/cases/${c.id}/actions`, { method: 'POST', body: { action: select.value, note: note || null } });
    return `Case ${c.id}: “${chosen.label}” recorded.`;
  }, onChange);
  return form;
}

function visitForm(c, onChange) {
  const id = `case-${c.id}-visit`;
  const error = fieldError();
  const start = c.next_visit ? new Date(c.next_visit.at) : new Date(Date.now() + 24 * 3600 * 1000);
  if (!c.next_visit) start.setHours(10, 0, 0, 0);
  const form = el('form', { class: 'form form--inline', 'aria-label': `Book a visit for case ${c.id}` },
    el('div', { class: 'field' }, el('label', { for: `${id}-at` }, c.next_visit ? 'Move the booked visit to' : 'Book a visit for'),
      el('input', { id: `${id}-at`, name: 'at', type: 'datetime-local', required: true, value: localInput(start) })),
    el('div', { class: 'field' }, el('label', { for: `${id}-note` }, 'What the tenant is told (optional)'),
      el('input', { id: `${id}-note`, name: 'note', type: 'text', maxlength: '500', value: c.next_visit && c.next_visit.note ? c.next_visit.note : '' })),
    error,
    el('button', { type: 'submit', class: 'button button--secondary' }, c.next_visit ? 'Move the visit' : 'Book the visit'));
  wire(form, error, async () => {
    const at = new Date(form.at.value);
    if (Number.isNaN(at.getTime())) throw new Error('Give the date and time of the visit.');
    const r = await api(`/api/v1/damp/cases/${c.id}/visit`, { method: 'PUT', body: { at: at.toISOString(), note: form.note.value.trim() || null } });
    return `Case ${c.id}: visit booked for ${r.next_visit ? r.next_visit.when : when(at.toISOString())}.`;
  }, onChange);
  return form;
}

function officerForm(c, officers, onChange) {
  const id = `case-${c.id}-officer`;
  const error = fieldError();
  const others = officers.filter((o) => o.name !== c.officer || c.owner_problem);
  if (!others.length) {
    return el('p', { class: 'hint' }, officers.length ? 'No other officer of this patch to hand the case to.'
      : 'This patch has no housing officer: an administrator must add one.');
  }
  const select = el('select', { id, name: 'officer', required: true },
    el('option', { value: '' }, 'Choose an officer'),
    others.map((o) => el('option', { value: o.name }, `${o.name} (${o.open_cases} open ${o.open_cases === 1 ? 'case' : 'cases'})`)));
  const form = el('form', { class: 'form form--inline', 'aria-label': `Responsible officer for case ${c.id}` },
    el('div', { class: 'field' }, el('label', { for: id }, c.officer ? 'Hand the case to' : 'Make responsible'), select),
    error,
    el('button', { type: 'submit', class: 'button button--secondary' }, 'Assign'));
  wire(form, error, async () => {
    if (!select.value) throw new Error('Choose the officer.');
    await api(`/api/v1/damp/cases/${c.id}/officer`, { method: 'PUT', body: { officer: select.value } });
    return `Case ${c.id}: ${select.value} is now responsible.`;
  }, onChange);
  return form;
}

// One line of the case history in words: when, what (to whom, for when), who, and the note.
function historyLine(e) {
  const d = e.details || {};
  let what = e.what;
  if (e.action === 'assign' && d.officer) what += ` to ${d.officer}`;
  if (e.action === 'book_visit' && d.visit_booked_for) what += ` for ${when(d.visit_booked_for)}`;
  const who = e.role === 'system' ? '' : ` by ${e.actor}`;
  return el('li', {}, `${when(e.at)}: ${what}${who}`, e.note ? ` — “${e.note}”` : '');
}

// The case's facts, ownership, visit, history and forms. `officers`: the officers of the case's patch.
export function caseBody(c, officers, onChange) {
  const facts = el('dl', { class: 'route__facts' });
  facts.append(el('dt', {}, 'Level'), el('dd', {}, c.emergency ? levelBadge('emergency') : levelBadge(c.level)));
  facts.append(el('dt', {}, 'Status'), el('dd', {}, c.status_text));
  facts.append(el('dt', {}, 'Responsible officer'),
    el('dd', { class: c.owner_problem ? 'overdue owner' : 'owner' }, c.officer || 'Nobody'));
  facts.append(el('dt', {}, 'Landlord aware'), el('dd', {}, when(c.aware_at)));
  for (const [key, label, step] of STEP_DEADLINES) {
    if (!c[key]) continue;
    const late = c.overdue.includes(step);
    facts.append(el('dt', {}, label), el('dd', { class: late ? 'overdue' : null }, `${day(c[key])}${late ? ' (overdue)' : ''}`));
  }
  facts.append(el('dt', {}, 'Next visit'), el('dd', { class: 'next-visit' },
    c.next_visit ? `${c.next_visit.when}${c.next_visit.note ? ` — ${c.next_visit.note}` : ''}` : 'None booked'));
  return [
    problemBox(c),
    facts,
    el('h4', {}, 'History'),
    el('ol', { class: 'history' }, c.history.map(historyLine)),
    c.status === 'closed' ? null : el('div', { class: 'case__forms' },
      actionForm(c, onChange), visitForm(c, onChange), officerForm(c, officers, onChange)),
  ];
}

// A case as a <details> block for the officer's list.
export function caseBlock(c, open, officers, onChange) {
  const next = c.next_step;
  const left = timeLeft(next);
  const overdue = isOverdue(c);
  const unowned = ownershipProblems(c).length > 0;
  const d = el('details', {
    class: `case${overdue ? ' is-overdue' : ''}${unowned ? ' is-unowned' : ''}`, id: `case-${c.id}`, open, dataset: { case: c.id },
  });
  d.append(
    el('summary', {}, `${c.address || c.home_id} — case ${c.id}, ${c.status_text}`,
      ', ', overdue ? el('span', { class: 'overdue' }, left.text) : next ? left.text : 'no step due',
      unowned ? [' — ', el('span', { class: 'overdue unowned-flag' }, c.officer ? 'officer cannot act' : 'no officer')] : null),
  );
  d.append(...caseBody(c, officers, onChange).filter(Boolean));
  return d;
}
