// The season report for the highways manager and the housing manager: what worked over a period. Roads for
// highways and admins, damp and mould for housing officers (their patch) and admins; charts, tables, CSV downloads
// (fetched with the session's token) and a printable view. The what-if (the same nights under another trigger or
// policy file, for highways and admins) is worked out when asked for with its form.

import { announce, api, day, el, failed, requireUser, token, when } from './common.js';

const FONT = { family: 'system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif', size: 13, color: '#0b0c0c' };
const CONFIG = { responsive: true, displaylogo: false, displayModeBar: false };
const OUTCOMES = {
  treated_in_time: 'Treated in time',
  missed: 'Missed',
  needless: 'Needless run',
  no_ice: 'No ice',
  no_data: 'No readings',
};
const STEPS = {
  emergency: 'Emergency made safe (24 hours)',
  investigate: 'Investigation (10 working days)',
  summary: 'Written summary (3 working days)',
  safety_work: 'Safety work (5 working days)',
  preventative_begin: 'Preventative work begun (5 working days)',
  preventative_start: 'Preventative work started (12 weeks)',
};
const STEP_OUTCOMES = [
  ['on_time', 'On time', '#00703c'],
  ['late', 'Late', '#d35400'],
  ['overdue', 'Open and overdue', '#a4161a'],
  ['open', 'Open, not yet due', '#1d4f91'],
  ['not_needed', 'Not needed (case closed)', '#505a5f'],
];

const state = { report: null, who: null };

function iso(d) {
  return d.toISOString().slice(0, 10);
}

// A winter season: from 1 October (of this year, or last year before October) to today.
function defaultPeriod(now = new Date()) {
  const year = now.getMonth() >= 9 ? now.getFullYear() : now.getFullYear() - 1;
  return { start: `${year}-10-01`, end: iso(now) };
}

function query(extra = {}) {
  const f = document.getElementById('period');
  return new URLSearchParams({ start: f.start.value, end: f.end.value, ...extra }).toString();
}

function num(v, digits = 0) {
  if (v === null || v === undefined) return '–';
  return Number(v).toLocaleString('en-GB', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(node, head, rows) {
  node.replaceChildren(
    el('thead', {}, el('tr', {}, head.map(([label, numeric]) => el('th', { scope: 'col', class: numeric ? 'num' : null }, label)))),
    el('tbody', {}, rows.map((r) => el('tr', { class: r.total ? 'total' : null }, r.cells.map((c, i) => (i === 0
      ? el('th', { scope: 'row' }, c)
      : el('td', { class: head[i][1] ? 'num' : null }, c)))))),
  );
  if (!rows.length) node.append(el('tbody', {}, el('tr', {}, el('td', { colspan: String(head.length) }, 'Nothing in this period.'))));
}

function tile(label, value, hint) {
  return el('div', { class: 'tile' }, el('span', { class: 'tile__value' }, value), el('span', { class: 'tile__label' }, label), hint ? el('span', { class: 'tile__hint hint' }, hint) : null);
}

function bars(node, categories, series, { yTitle = '', stacked = true } = {}) {
  if (!window.Plotly) throw new Error('the chart library did not load');
  if (!categories.length) {
    window.Plotly.purge(node);
    node.replaceChildren(el('p', { class: 'empty' }, 'Nothing to draw for this period.'));
    return Promise.resolve();
  }
  node.replaceChildren();
  const traces = series.map((s) => ({
    type: 'bar', name: s.name, x: categories, y: s.values, marker: { color: s.colour, line: { color: '#0b0c0c', width: 1 } },
    hovertemplate: `%{x}: %{y} ${s.name.toLowerCase()}<extra></extra>`,
  }));
  const layout = {
    font: FONT, barmode: stacked ? 'stack' : 'group', height: 320, margin: { l: 56, r: 16, t: 16, b: 64 },
    yaxis: { title: { text: yTitle }, rangemode: 'tozero', gridcolor: '#dcdcdc', tickformat: ',d' },
    legend: { orientation: 'h', y: -0.25, traceorder: 'normal' }, paper_bgcolor: '#fff', plot_bgcolor: '#fff',
  };
  return window.Plotly.react(node, traces, layout, CONFIG);
}

function response(t) {
  if (!t || !t.n) return '–';
  return `${num(t.median_min)} (${num(t.p90_min)}), n = ${t.n}`;
}

// -- roads -------------------------------------------------------------------------------------------------

async function drawRoads(roads) {
  const section = document.getElementById('roads');
  section.hidden = false;
  const t = roads.total;
  document.getElementById('roads-note').textContent = `${roads.routes.length} ${roads.routes.length === 1 ? 'route' : 'routes'} over ${roads.nights} ${roads.nights === 1 ? 'night' : 'nights'}. Salt without recorded tonnes is estimated from the spread rate, each route's length and a treated width of ${num(roads.treated_width_m, 1)} m (${roads.treated_width_source}).`;
  document.getElementById('roads-tiles').replaceChildren(
    tile('nights with ice risk observed', num(t.nights_any_ice), `${num(t.ice_nights)} route-nights`),
    tile('treated in time', num(t.treated_in_time)),
    tile('missed', num(t.missed), t.treated_late ? `${num(t.treated_late)} treated late` : null),
    tile('needless runs', num(t.needless)),
    tile('decisions issued', num(t.decisions_issued), `${num(t.acknowledged)} acknowledged`),
    tile('treatment runs', num(t.runs_completed), t.runs_discretionary ? `${num(t.runs_discretionary)} at the officer's discretion` : null),
    tile('tonnes of salt', num(t.salt_t, 1), `${num(t.salt_recorded_t, 1)} t recorded, ${num(t.salt_estimated_t, 1)} t estimated`),
  );
  const names = roads.routes.map((r) => r.route_name);
  const routeRows = roads.routes.map((r) => ({
    cells: [r.route_name, num(r.length_km, 1), num(r.ice_nights), num(r.treated_in_time), num(r.missed), num(r.needless),
      num(r.decisions_issued), num(r.acknowledged), num(r.runs_completed), num(r.salt_t, 2)],
  }));
  routeRows.push({ total: true, cells: ['All routes', '', num(t.ice_nights), num(t.treated_in_time), num(t.missed), num(t.needless), num(t.decisions_issued), num(t.acknowledged), num(t.runs_completed), num(t.salt_t, 2)] });
  table(document.getElementById('routes-table'), [
    ['Route'], ['Length (km)', true], ['Ice nights', true], ['Treated in time', true], ['Missed', true], ['Needless', true],
    ['Decisions', true], ['Acknowledged', true], ['Runs', true], ['Salt (t)', true],
  ], routeRows);
  const respRows = roads.routes.map((r) => ({ cells: [r.route_name, response(r.response.acknowledged), response(r.response.started), response(r.response.completed)] }));
  respRows.push({ total: true, cells: ['All routes', response(t.response.acknowledged), response(t.response.started), response(t.response.completed)] });
  table(document.getElementById('response-table'), [['Route'], ['To acknowledged', true], ['To run started', true], ['To run completed', true]], respRows);
  table(document.getElementById('nights-table'), [['Night of'], ['Route'], ['Outcome'], ['First freeze'], ['Lowest (°C)', true], ['Runs', true], ['First run completed']],
    roads.nights_detail.map((n) => ({
      cells: [day(`${n.night}T12:00:00Z`), n.route_name, OUTCOMES[n.outcome] || n.outcome, n.first_ice_at ? when(n.first_ice_at) : '–',
        num(n.min_rst, 1), num(n.runs_completed), n.first_completed_at ? when(n.first_completed_at) : '–'],
    })));
  await bars(document.getElementById('roads-chart'), names, [
    { name: 'Treated in time', colour: '#00703c', values: roads.routes.map((r) => r.treated_in_time) },
    { name: 'Missed', colour: '#a4161a', values: roads.routes.map((r) => r.missed) },
    { name: 'Needless', colour: '#d35400', values: roads.routes.map((r) => r.needless) },
  ], { yTitle: 'nights' });
}

// -- damp --------------------------------------------------------------------------------------------------

function stepCells(g) {
  return STEP_OUTCOMES.map(([k]) => num(g[k]));
}

async function drawDamp(damp) {
  const section = document.getElementById('damp');
  section.hidden = false;
  const c = damp.compliance;
  const due = STEP_OUTCOMES.reduce((n, [k]) => n + c.total[k], 0);
  const w = damp.works_summary;
  document.getElementById('damp-tiles').replaceChildren(
    tile("Awaab's Law steps due", num(due)),
    tile('on time', num(c.total.on_time)),
    tile('late', num(c.total.late)),
    tile('open and overdue', num(c.total.overdue)),
    tile('homes with works completed', num(w.homes), `${num(w.improved)} improved of ${num(w.judged)} with enough readings`),
  );
  const head = [['Patch'], ...STEP_OUTCOMES.map(([, label]) => [label, true])];
  table(document.getElementById('patches-table'), head, [
    ...c.by_patch.map((g) => ({ cells: [g.name, ...stepCells(g)] })),
    { total: true, cells: ['All patches', ...stepCells(c.total)] },
  ]);
  table(document.getElementById('officers-table'), [['Responsible officer'], ...head.slice(1)],
    c.by_officer.map((g) => ({ cells: [g.name, ...stepCells(g)] })));
  await bars(document.getElementById('damp-chart'), c.by_patch.map((g) => g.name),
    STEP_OUTCOMES.slice(0, 4).map(([k, label, colour]) => ({ name: label, colour, values: c.by_patch.map((g) => g[k]) })),
    { yTitle: 'steps' });
  table(document.getElementById('works-table'), [['Home'], ['Works completed'], ['Hours above 70 % before / after', true],
    ['Hours above 80 % before / after', true], ['Peak mould index before / after', true], ['Improved']],
  damp.works.map((h) => ({
    cells: [h.address || h.home_id, when(h.works_completed_at), `${num(h.before.hours_above_70)} / ${num(h.after.hours_above_70)}`,
      `${num(h.before.hours_above_80)} / ${num(h.after.hours_above_80)}`,
      `${num(h.before.peak_mould_index, 2)} / ${num(h.after.peak_mould_index, 2)}`,
      !h.judged ? `Not enough readings${h.after.complete ? '' : ' yet (the four weeks after are not over)'}` : (h.improved ? 'Yes' : 'No')],
  })));
  const labels = damp.works.map((h) => h.address || h.home_id);
  await bars(document.getElementById('works-chart'), labels, [
    { name: 'Before', colour: '#a4161a', values: damp.works.map((h) => h.before.hours_above_70) },
    { name: 'After', colour: '#00703c', values: damp.works.map((h) => h.after.hours_above_70) },
  ], { yTitle: 'hours above 70 % RH', stacked: false });
}

// -- what-if and definitions -------------------------------------------------------------------------------

function trigger(side) {
  const t = Number(side.trigger_c);
  const text = Math.abs(t) < 0.05 ? '0.0' : `${t > 0 ? '+' : ''}${t.toFixed(1)}`;
  return `${side.trigger_inclusive ? 'at or below' : 'below'} ${text} °C`;
}

function change(v, digits = 0) {
  if (v === null || v === undefined) return '–';
  return `${v > 0 ? '+' : ''}${num(v, digits)}`;
}

function drawWhatIf(whatIf) {
  const p = document.getElementById('what-if-text');
  const note = document.getElementById('what-if-note');
  const tbl = document.getElementById('what-if-table');
  p.dataset.status = whatIf.status;
  p.textContent = whatIf.text;
  if (whatIf.status !== 'computed') {
    note.hidden = true;
    tbl.hidden = true;
    return;
  }
  const t = whatIf.total;
  note.hidden = false;
  note.textContent = `In force: treat ${trigger(whatIf.in_force)}, ${num(whatIf.in_force.rate_g_m2)} g/m²; ${whatIf.policy}: treat ${trigger(whatIf.other)}, ${num(whatIf.other.rate_g_m2)} g/m². The nowcast replayed each hour ${String(whatIf.issue_hours[0]).padStart(2, '0')}:00 to ${String(whatIf.issue_hours[whatIf.issue_hours.length - 1]).padStart(2, '0')}:00 (${whatIf.tz}), ${whatIf.horizon_hours} hours ahead. ${num(t.covered)} of ${num(t.route_nights)} route-nights covered by the data; the others are counted for neither policy. In the table: in force → ${whatIf.policy}.`;
  const cells = (r, name) => [name, num(r.covered), num(r.not_covered), num(r.ice_nights),
    `${num(r.in_force.treated)} → ${num(r.other.treated)}`, `${num(r.in_force.missed)} → ${num(r.other.missed)}`,
    `${num(r.in_force.needless)} → ${num(r.other.needless)}`, num(r.treatments_saved), change(r.misses_added), num(r.salt_saved_t, 1)];
  tbl.hidden = false;
  table(tbl, [['Route'], ['Covered', true], ['Not covered', true], ['Ice nights', true], ['Treated', true],
    ['Ice untreated', true], ['Needless', true], ['Runs saved', true], ['Misses added', true], ['Salt saved (t)', true]], [
    ...whatIf.routes.map((r) => ({ cells: cells(r, r.route_name) })),
    { total: true, cells: cells(t, 'All routes') },
  ]);
}

async function askWhatIf() {
  const form = document.getElementById('what-if-form');
  const file = form.file.files[0];
  const value = form.trigger.value.trim();
  let whatIf;
  if (file) {
    let policy;
    try {
      policy = JSON.parse(await file.text());
    } catch (err) {
      throw new Error(`${file.name} is not a JSON policy file (${err.message})`);
    }
    if (!policy || typeof policy !== 'object' || Array.isArray(policy)) throw new Error(`${file.name} is not a JSON object of policy values`);
    if (!policy.name) policy.name = file.name;
    announce('Working out the what-if: the nowcast is replayed over the period…');
    whatIf = await api(`/api/v1/reports/season/what-if?${query()}`, { method: 'POST', body: policy });
  } else if (value !== '') {
    announce('Working out the what-if: the nowcast is replayed over the period…');
    const report = await api(`/api/v1/reports/season?${query({ what_if_trigger_c: value })}`);
    whatIf = report.what_if;
  } else {
    throw new Error('give a trigger in °C or choose a policy file');
  }
  drawWhatIf(whatIf);
  announce('What-if worked out.');
}

function drawDefinitions(defs) {
  const dl = document.getElementById('definitions');
  const words = { night: 'Night', ice_risk: 'Ice risk observed', treated_in_time: 'Treated in time', missed: 'Missed', needless: 'Needless', acknowledged: 'Acknowledged', response_times: 'Response times', salt: 'Salt', awaabs_law_steps: "Awaab's Law steps", works: 'Works' };
  dl.replaceChildren(...Object.entries(defs).flatMap(([k, v]) => [el('dt', {}, words[k] || k), el('dd', {}, v)]));
}

// -- loading, CSV, print -------------------------------------------------------------------------------------

async function show() {
  const f = document.getElementById('period');
  const report = await api(`/api/v1/reports/season?${query()}`);
  state.report = report;
  document.getElementById('print-period').textContent = `From the night of ${day(`${report.start}T12:00:00Z`)} to the night of ${day(`${report.end}T12:00:00Z`)}; produced ${when(report.generated_at)}.`;
  history.replaceState(null, '', `?${query()}`);
  document.getElementById('roads').hidden = true;
  document.getElementById('damp').hidden = true;
  if (report.roads) await drawRoads(report.roads);
  if (report.damp) await drawDamp(report.damp);
  drawWhatIf(report.what_if);
  document.getElementById('what-if-form').hidden = !report.roads; // the roads' what-if: highways and admins
  drawDefinitions(report.definitions);
  announce(`Report from ${f.start.value} to ${f.end.value} shown.`);
}

async function download(table) {
  const r = await fetch(`/api/v1/reports/season?${query({ format: 'csv', table })}`, {
    headers: { Authorization: `Bearer ${token()}`, Accept: 'text/csv' }, cache: 'no-store',
  });
  if (!r.ok) throw new Error(`the CSV could not be made (${r.status})`);
  const blob = await r.blob();
  const name = (r.headers.get('content-disposition') || '').match(/filename="([^"]+)"/);
  const a = el('a', { href: URL.createObjectURL(blob), download: name ? name[1] : `season-${table}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function wire() {
  const f = document.getElementById('period');
  const params = new URLSearchParams(location.search);
  const d = defaultPeriod();
  f.start.value = params.get('start') || d.start;
  f.end.value = params.get('end') || d.end;
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    show().catch(failed);
  });
  document.getElementById('print').addEventListener('click', () => window.print());
  document.getElementById('what-if-form').addEventListener('submit', (e) => {
    e.preventDefault();
    askWhatIf().catch(failed);
  });
  // The printed report shows everything, folded parts included.
  window.addEventListener('beforeprint', () => document.querySelectorAll('details.report-fold').forEach((d) => { d.open = true; }));
  for (const t of ['routes', 'nights', 'patches', 'officers', 'homes']) {
    document.getElementById(`csv-${t}`).addEventListener('click', (e) => {
      e.preventDefault();
      download(t).catch(failed);
    });
  }
}

const who = await requireUser(['highways', 'officer', 'admin']);
if (who) {
  state.who = who;
  wire();
  try {
    await show();
  } catch (err) {
    failed(err);
  }
}
