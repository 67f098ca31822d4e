// Gritting for highways staff and duty officers: a map of the routes coloured by decision, each route's
// decision with its reasons and times, road temperature charts of its stations, and the duty officer's
// acknowledge / start / complete buttons (each recorded by the API with the user's name).

import {
  ACTIONS, ACTIVE, actionBadge, actorName, announce, api, ApiError, clock, el, EVENT_LABELS, failed, requireUser,
  roadDegrees, RUN_ACTIONS, STATUSES, statusBadge, TREATING, when, ago,
} from './common.js';
import { showEmpty, timeChart } from './charts.js';
import { routeMap } from './map.js';
import { showForecast } from './forecast.js';

const REFRESH_MS = 60_000;
const STATION_METRICS = [
  ['road_surface_temperature', 'Road surface', '#1d4f91', 'solid'],
  ['air_temperature', 'Air', '#505a5f', 'dash'],
  ['dew_point', 'Dew point', '#00703c', 'dot'],
];
// What the duty officer records on a route (core.gritting.lifecycle; the API lists the ones valid now).
const VERBS = {
  acknowledge: { label: 'Acknowledge', done: 'acknowledged' },
  start: { label: 'Start treatment', done: 'marked as started' },
  complete: { label: 'Complete treatment', done: 'marked as completed' },
  cancel_run: { label: 'Call the run back', done: 'run called back', path: 'cancel-run' },
  amend: { label: "Correct the last run's figures", done: 'figures corrected', path: 'run-figures' },
  cancel: { label: 'Cancel decision', done: 'cancelled' },
  note: { label: 'Add note', done: 'note added' },
};

const state = { routes: new Map(), stations: new Map(), who: null };

function slug(id) {
  return String(id).replace(/[^A-Za-z0-9_-]/g, '_');
}

function urgency(route) {
  const d = route.decision;
  if (!d) return 9;
  const treating = TREATING.includes(d.action);
  const rank = { escalated: 0, issued: 1, acknowledged: 2, in_progress: 3 }[d.status];
  if (rank !== undefined && (treating || d.status === 'escalated')) return rank;
  return rank !== undefined ? 5 : 6;
}

function sorted(routes) {
  return [...routes].sort((a, b) => urgency(a) - urgency(b) || a.priority - b.priority || a.name.localeCompare(b.name));
}

// -- the map ----------------------------------------------------------------------------------------

function drawMap() {
  const routes = [...state.routes.values()].map((r) => ({
    id: r.id, name: r.name, geometry: r.geometry, action: r.decision ? r.decision.action : 'unknown',
    status: r.decision ? r.decision.status : null, message: r.decision ? r.decision.message : null, stations: r.stations,
  }));
  return routeMap(document.getElementById('route-map'), routes, [...state.stations.values()], { link: (r) => `#route-${slug(r.id)}` });
}

// -- a route ----------------------------------------------------------------------------------------

function fact(term, ...value) {
  return [el('dt', {}, term), el('dd', {}, ...value)];
}

function rateText(d) {
  if (d.spread_rate_g_m2 === null || d.spread_rate_g_m2 === undefined) return null;
  const passes = d.passes > 1 ? ` × ${d.passes} passes` : '';
  return `${d.spread_rate_g_m2} g/m²${passes}, ${d.spread_type}`;
}

function routeCard(route) {
  const d = route.decision;
  const action = d ? d.action : 'unknown';
  const id = `route-${slug(route.id)}`;
  const card = el('article', { class: 'route', id, 'aria-labelledby': `${id}-name`, dataset: { routeId: route.id } });
  card.style.borderLeftColor = (ACTIONS[action] || ACTIONS.unknown).colour;
  card.append(
    el('h3', { id: `${id}-name` }, route.name, el('span', { class: 'hint' }, ` · priority ${route.priority}`)),
    el('p', { class: 'route__head' }, actionBadge(d ? action : null), d ? statusBadge(d.status) : null),
  );
  if (!d) {
    card.append(el('p', { class: 'hint' }, route.evaluated_at ? `Last looked at ${when(route.evaluated_at)}.` : 'Not evaluated yet.'));
  } else {
    card.append(el('p', {}, d.message));
    const facts = el('dl', { class: 'route__facts' });
    const rate = rateText(d);
    if (rate) facts.append(...fact('Spread', rate));
    if (d.call_out_by) facts.append(...fact('Call out by', when(d.call_out_by), d.late ? el('span', { class: 'overdue' }, ' issued late') : null));
    if (d.start_not_before) facts.append(...fact('Not before', when(d.start_not_before)));
    if (d.start_by) facts.append(...fact('Start by', when(d.start_by)));
    if (d.complete_by) facts.append(...fact('Complete by', when(d.complete_by)));
    if (d.min_rst !== null && d.min_rst !== undefined) {
      const worst = d.worst_station ? ((state.stations.get(d.worst_station) || {}).name || d.worst_station) : null;
      facts.append(...fact('Lowest road surface temperature', `${roadDegrees(d.min_rst)}${d.min_rst_at ? ` at ${when(d.min_rst_at)}` : ''}`, worst ? ` (${worst})` : ''));
    }
    facts.append(...fact('Issued', when(d.issued_at)));
    facts.append(
      ...fact(
        'Status',
        el('span', { class: 'route__status', tabindex: '-1', dataset: { status: d.status } }, STATUSES[d.status] || d.status),
        ` — by ${actorName(d.status_by)}, ${when(d.status_at)}`,
      ),
    );
    card.append(facts);
    if (d.reasons && d.reasons.length) {
      card.append(el('p', { class: 'hint' }, 'Why:'), el('ul', { class: 'reasons' }, d.reasons.map((r) => el('li', {}, r))));
    }
    card.append(modelDetails(d));
    card.append(...[runsList(d), notesList(d), actionsForm(route, d, id), historyFold(d)].filter(Boolean));
  }
  card.append(stationsPanel(route, id, d && ACTIVE.includes(d.status) && TREATING.includes(d.action)));
  return card;
}

// The model's internals, folded away: how sure it is as a number, how far ahead a nowcast reaches, which rule.
function modelDetails(d) {
  const facts = el('dl', { class: 'route__facts' },
    ...fact('Confidence', `${Number(d.confidence).toFixed(2)} (0: none, 1: certain)`),
    ...fact('Nowcast reaches', d.horizon_hours ? `${Number(d.horizon_hours).toFixed(1)} h ahead` : 'not used (observations or a forecast)'),
    ...fact('Rule', el('code', {}, d.rule)));
  return el('details', { class: 'route__details' }, el('summary', {}, 'Details'), facts);
}

// -- what the crews did -------------------------------------------------------------------------------

function runText(r) {
  const figures = [
    r.spread_rate_g_m2 !== null && r.spread_rate_g_m2 !== undefined ? `${r.spread_rate_g_m2} g/m²` : null,
    r.tonnes !== null && r.tonnes !== undefined ? `${r.tonnes} t of salt` : null,
    r.vehicle ? `vehicle ${r.vehicle}` : null,
    r.crew ? `crew ${r.crew}` : null,
  ].filter(Boolean);
  const times = r.status === 'in_progress'
    ? `out since ${when(r.started_at)} (started by ${r.started_by})`
    : `${when(r.started_at)} to ${when(r.finished_at)}, ${r.status === 'completed' ? 'completed' : 'called back'} by ${r.finished_by}`;
  const why = r.discretionary ? ` At the duty officer's discretion: ${r.reason}.` : '';
  return `Run ${r.number}: ${times}. ${figures.length ? figures.join(', ') : 'No figures recorded yet'}.${why}`;
}

function runsList(d) {
  const runs = d.runs || [];
  if (!runs.length) return null;
  return el('div', { class: 'route__runs' },
    el('h4', {}, runs.length === 1 ? 'Treatment run' : `Treatment runs (${runs.length})`),
    el('ul', { class: 'runs' }, runs.map((r) => el('li', { dataset: { run: String(r.number), runStatus: r.status } }, runText(r)))));
}

function notesList(d) {
  const notes = (d.history || []).filter((e) => e.note && e.actor !== 'evaluator');
  if (!notes.length) return null;
  return el('div', { class: 'route__notes' },
    el('h4', {}, 'Notes'),
    el('ul', { class: 'notes' }, notes.map((e) => el('li', {}, el('q', {}, e.note), ` — ${e.actor}, ${when(e.at)}`))));
}

function historyFold(d) {
  const history = d.history || [];
  if (!history.length) return null;
  const details = el('details', { class: 'route__history' });
  details.append(
    el('summary', {}, `History (${history.length} ${history.length === 1 ? 'step' : 'steps'})`),
    el('ol', { class: 'history' }, history.map((e) => el('li', {},
      el('span', { class: 'history__when' }, when(e.at)), ' ',
      el('strong', {}, EVENT_LABELS[e.event] || e.event),
      ` by ${actorName(e.actor)}`,
      e.decision_id !== d.id ? el('span', { class: 'hint' }, ' (earlier decision)') : null,
      e.note ? `: ${e.note}` : ''))),
  );
  return details;
}

function input(id, label, props = {}) {
  return el('div', { class: 'field' }, el('label', { for: id }, label), el('input', { id, autocomplete: 'off', ...props }));
}

// A time of day typed in UK time, as an instant: today, or yesterday when that time is still to come.
function ukTimeToday(hhmm) {
  const now = new Date();
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/London', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(now).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute);
  const offset = wall - Math.floor(now.getTime() / 60000) * 60000;
  const [h, m] = hhmm.split(':').map(Number);
  let t = Date.UTC(+parts.year, +parts.month - 1, +parts.day, h, m) - offset;
  if (t > now.getTime() + 60000) t -= 24 * 3600 * 1000;
  return new Date(t).toISOString();
}

function actionsForm(route, d, id) {
  const actions = d.actions || [];
  const form = el('form', { class: 'actions', 'aria-label': `Record what the crews do on ${route.name}` });
  const running = (d.runs || []).some((r) => r.status === 'in_progress');
  const discretionary = actions.includes('start') && !TREATING.includes(d.action);
  const completedRuns = (d.runs || []).filter((r) => r.status === 'completed').length;
  form.append(
    el('div', { class: 'field' }, el('label', { for: `${id}-note` }, 'Note (optional)'), el('input', { type: 'text', id: `${id}-note`, name: 'note', maxlength: '2000', autocomplete: 'off' })),
  );
  if (actions.some((a) => RUN_ACTIONS.includes(a))) {
    const legend = running ? 'The run out: what the crew reports'
      : actions.includes('amend') ? 'Another run, or a correction of the last one: what the crew reports' : 'The run: what the crew reports (optional)';
    const run = el('fieldset', { class: 'run-form' }, el('legend', {}, legend));
    if (discretionary) {
      run.append(input(`${id}-reason`, 'Reason (needed: the decision does not ask for treatment)', { type: 'text', name: 'reason', maxlength: '2000', required: true }));
    }
    run.append(
      input(`${id}-rate`, 'Spread rate used (g/m²)', { type: 'number', name: 'spread_rate_g_m2', min: '0.1', max: '100', step: '0.1', inputmode: 'decimal' }),
      input(`${id}-tonnes`, 'Salt used (tonnes)', { type: 'number', name: 'tonnes', min: '0', max: '1000', step: '0.01', inputmode: 'decimal' }),
      input(`${id}-vehicle`, 'Vehicle', { type: 'text', name: 'vehicle', maxlength: '200' }),
      input(`${id}-crew`, 'Crew', { type: 'text', name: 'crew', maxlength: '500' }),
      input(`${id}-time`, 'Time it happened, UK time (empty: now)', { type: 'time', name: 'time' }),
    );
    form.append(run);
  }
  const buttons = el('div', { class: 'actions__buttons' });
  for (const verb of actions) {
    const v = VERBS[verb];
    if (!v) continue;
    let label = v.label;
    if (verb === 'start' && completedRuns) label = 'Start another run';
    else if (verb === 'start' && discretionary) label = 'Start a treatment at my discretion';
    const b = el('button', { type: 'button', class: verb === 'cancel' ? 'button button--secondary' : 'button', dataset: { action: verb } }, label);
    b.addEventListener('click', () => act(route.id, d.id, verb, form));
    buttons.append(b);
  }
  form.append(buttons);
  form.addEventListener('submit', (e) => e.preventDefault());
  return form;
}

function formBody(form, verb) {
  const value = (name) => (form.elements[name] ? form.elements[name].value.trim() : '');
  const body = {};
  if (value('note')) body.note = value('note');
  if (!RUN_ACTIONS.includes(verb) && verb !== 'note') return body;
  if (verb === 'start' && value('reason')) body.reason = value('reason');
  if (RUN_ACTIONS.includes(verb)) {
    if (value('spread_rate_g_m2')) body.spread_rate_g_m2 = Number(value('spread_rate_g_m2'));
    if (value('tonnes')) body.tonnes = Number(value('tonnes'));
    if (value('vehicle')) body.vehicle = value('vehicle');
    if (value('crew')) body.crew = value('crew');
    if (value('time') && verb !== 'amend') body.at = ukTimeToday(value('time'));
  }
  return body;
}

async function act(routeId, decisionId, verb, form) {
  const route = state.routes.get(routeId);
  const reason = form.elements.reason;
  if (verb === 'start' && reason && !reason.value.trim()) {
    const what = (ACTIONS[route.decision.action] || { label: route.decision.action }).label;
    announce(`The decision for ${route.name} is '${what}', so a treatment is at your discretion: give the reason for it.`, { error: true });
    reason.focus();
    return;
  }
  const buttons = form.querySelectorAll('button');
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const path = VERBS[verb].path || verb;
    const updated = await api(`/api/v1/gritting/decisions/${decisionId}/${path}`, { method: 'POST', body: formBody(form, verb) });
    route.decision = updated;
    replaceCard(route, true);
    summary();
    announce(`${route.name}: ${VERBS[verb].done} by you at ${clock(new Date().toISOString())}.`);
  } catch (err) {
    failed(err);
    if (err instanceof ApiError && err.status === 404) await refresh(true);
    else buttons.forEach((b) => { b.disabled = false; });
  }
}

function replaceCard(route, focusStatus = false) {
  const old = document.getElementById(`route-${slug(route.id)}`);
  const card = routeCard(route);
  if (old) old.replaceWith(card);
  else document.getElementById('routes').append(card);
  if (focusStatus) {
    const s = card.querySelector('.route__status') || card.querySelector('h3');
    s.setAttribute('tabindex', '-1');
    s.focus();
  }
  drawMapSoon();
}

let mapTimer = null;
function drawMapSoon() {
  clearTimeout(mapTimer);
  mapTimer = setTimeout(() => drawMap().catch(failed), 50);
}

// -- stations ---------------------------------------------------------------------------------------

function stationsPanel(route, id, open) {
  const n = route.stations.length;
  const details = el('details', { class: 'route__stations', open });
  details.append(el('summary', {}, n ? `Road temperatures at ${n} ${n === 1 ? 'station' : 'stations'}, last 24 hours` : 'No road stations on this route'));
  const grid = el('div', { class: 'stations' });
  details.append(grid);
  let drawn = false;
  const draw = () => {
    if (drawn || !details.open || !n) return;
    drawn = true;
    for (const sid of route.stations) grid.append(stationFigure(sid, `${id}-${slug(sid)}`));
  };
  details.addEventListener('toggle', draw);
  if (open) queueMicrotask(draw);
  return details;
}

function stationFigure(stationId, id) {
  const device = state.stations.get(stationId);
  const name = (device && device.name) || stationId;
  const chart = el('div', { class: 'chart chart--small', id: `${id}-chart` });
  const caption = el('figcaption', { id: `${id}-caption` }, `${name}: loading…`);
  const fig = el('figure', { class: 'chart-figure station', dataset: { station: stationId } }, el('h4', {}, name), chart, caption);
  drawStation(stationId, device, chart, caption, name).catch((err) => {
    showEmpty(chart, `Could not load the readings: ${err.message}`);
  });
  return fig;
}

async function drawStation(stationId, device, chart, caption, name) {
  const have = device && device.latest ? Object.keys(device.latest) : ['road_surface_temperature'];
  const start = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
  const wanted = STATION_METRICS.filter(([m]) => have.includes(m));
  const got = await Promise.all(
    wanted.map(([m]) => api(`/api/v1/devices/${encodeURIComponent(stationId)}/readings?metric=${m}&start=${encodeURIComponent(start)}`)),
  );
  const series = got
    .map((r, i) => ({ name: wanted[i][1], colour: wanted[i][2], dash: wanted[i][3], points: r.points.filter((p) => typeof p.value === 'number') }))
    .filter((s) => s.points.length);
  const rst = device && device.latest && device.latest.road_surface_temperature;
  caption.textContent = rst
    ? `${name}: road surface ${roadDegrees(rst.value)} at ${when(rst.ts)} (${ago(rst.ts)}). Dotted line: 0 °C.`
    : `${name}: no road surface temperature yet.`;
  if (!series.length) {
    showEmpty(chart, 'No readings in the last 24 hours.');
    return;
  }
  await timeChart(chart, series, { unit: '°C', yTitle: '°C', threshold: 0, thresholdLabel: '0 °C', small: true });
}

// -- loading ----------------------------------------------------------------------------------------

function summary() {
  const routes = [...state.routes.values()];
  const treat = routes.filter((r) => r.decision && ACTIVE.includes(r.decision.status) && TREATING.includes(r.decision.action));
  const waiting = routes.filter((r) => r.decision && ['issued', 'escalated'].includes(r.decision.status) && TREATING.includes(r.decision.action));
  const parts = [`${routes.length} ${routes.length === 1 ? 'route' : 'routes'}`];
  parts.push(`${treat.length} ${treat.length === 1 ? 'needs' : 'need'} treatment`);
  if (waiting.length) parts.push(`${waiting.length} not yet acknowledged`);
  document.getElementById('summary').textContent = `${parts.join(', ')}. Updated ${clock(new Date().toISOString())}.`;
}

function signature(route) {
  const d = route.decision;
  return d ? `${d.id}:${d.status}:${d.status_at}` : `none:${route.evaluated_at}`;
}

async function load() {
  const [routes, devices] = await Promise.all([api('/api/v1/routes'), api('/api/v1/devices')]);
  state.stations = new Map(devices.filter((d) => d.kind === 'road_station').map((d) => [d.id, d]));
  return sorted(routes);
}

async function first() {
  const routes = await load();
  const box = document.getElementById('routes');
  box.replaceChildren();
  for (const r of routes) {
    state.routes.set(r.id, r);
    box.append(routeCard(r));
  }
  if (!routes.length) box.append(el('p', {}, 'There are no routes in the registry yet.'));
  summary();
  await Promise.all([drawMap(), forecastStatus()]);
}

function forecastStatus() {
  const box = document.getElementById('forecast-status');
  return showForecast(box).catch((err) => box.replaceChildren(el('p', { class: 'error-text' }, `The forecast status could not be read: ${err.message}`)));
}

// Later loads replace only the routes that changed, and never the one being worked on.
async function refresh(force = false) {
  const routes = await load();
  for (const r of routes) {
    const old = state.routes.get(r.id);
    const card = document.getElementById(`route-${slug(r.id)}`);
    if (old && signature(old) === signature(r) && !force) continue;
    if (card && card.contains(document.activeElement) && !force) continue;
    state.routes.set(r.id, r);
    replaceCard(r);
  }
  summary();
  drawMapSoon(); // station labels follow the latest readings
  await forecastStatus();
}

const who = await requireUser(['highways', 'admin']);
if (who) {
  state.who = who;
  try {
    await first();
  } catch (err) {
    failed(err);
  }
  setInterval(() => refresh().catch(failed), REFRESH_MS);
}
