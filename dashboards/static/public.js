// Open data, for anyone: road temperatures and gritting on a map and in tables, and homes only as totals by
// area (the server withholds small areas). Reads only /open-data/*, never the token-protected API.

import { actionBadge, ago, degrees, el, failed, optionalUser, percent, roadDegrees, TREATING, when } from './common.js';
import { routeMap } from './map.js';

async function get(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  if (!r.ok) throw new Error(`${path} answered ${r.status}`);
  return r.json();
}

// What the public is told of a route's gritting: what the crews are doing, never the council's internal workflow.
const PUBLIC_STATUS = {
  issued: 'Planned', acknowledged: 'Planned', escalated: 'Planned', in_progress: 'Gritters out', completed: 'Treated',
};

function gritStatus(d) {
  if (!d || !TREATING.includes(d.action)) return '–';
  return PUBLIC_STATUS[d.status] || '–';
}

// A table cell that names its column (shown before the value when the table is stacked on a phone).
function td(label, props, ...children) {
  return el('td', { ...props, 'data-label': label }, ...children);
}

function share(x) {
  return x === null || x === undefined ? '–' : `${Math.round(x * 100)} %`;
}

function drawRoads(roads, gritting) {
  const latest = (p, metric) => (p[metric] === null || p[metric] === undefined ? null : { value: p[metric], ts: p[`${metric}_at`] });
  const stations = roads.features.map((f) => ({
    id: f.properties.id, name: f.properties.name, geometry: f.geometry,
    latest: Object.fromEntries(['road_surface_temperature', 'air_temperature', 'surface_state'].map((m) => [m, latest(f.properties, m)])),
  }));
  const routes = gritting.features.map((f) => ({
    id: f.properties.id, name: f.properties.name, geometry: f.geometry, stations: f.properties.stations,
    action: f.properties.decision ? f.properties.decision.action : 'unknown',
  }));
  const mapDone = routeMap(document.getElementById('road-map'), routes, stations);

  const tbody = document.getElementById('stations');
  tbody.replaceChildren(...roads.features.map(({ properties: s }) => el('tr', {},
    el('th', { scope: 'row' }, s.name || s.id, s.name ? el('span', { class: 'small' }, s.id) : null),
    td('Road surface', { class: 'num' }, roadDegrees(s.road_surface_temperature)),
    td('Surface', {}, s.surface_state || '–'),
    td('Air', { class: 'num' }, roadDegrees(s.air_temperature)),
    td('Measured', {}, s.road_surface_temperature_at ? [when(s.road_surface_temperature_at), el('span', { class: 'small' }, ago(s.road_surface_temperature_at))] : '–'),
    td('Routes', {}, s.routes.join(', ') || '–'))));
  if (!roads.features.length) tbody.append(el('tr', {}, el('td', { colspan: '6' }, 'No road stations yet.')));

  const rbody = document.getElementById('routes');
  rbody.replaceChildren(...gritting.features.map(({ properties: r }) => {
    const d = r.decision;
    return el('tr', {},
      el('th', { scope: 'row' }, r.name),
      td('Priority', { class: 'num' }, String(r.priority)),
      td('Action', {}, actionBadge(d ? d.action : null), d && d.spread_rate_g_m2 ? el('span', { class: 'small' }, `${d.spread_rate_g_m2} g/m²`) : null),
      td('Gritting', { dataset: { status: gritStatus(d) } }, gritStatus(d)),
      td('Start by', {}, d && d.start_by ? when(d.start_by) : '–'),
      td('Complete by', {}, d && d.complete_by ? when(d.complete_by) : '–'));
  }));
  if (!gritting.features.length) rbody.append(el('tr', {}, el('td', { colspan: '6' }, 'No routes yet.')));
  return mapDone;
}

const LEVEL_COLUMNS = [
  ['red', 'Red'], ['watch', 'Watch'], ['advice', 'Advice'], ['green', 'Green'], ['insufficient_data', 'Not enough data'],
  ['not_assessed', 'Not assessed'],
];

// The licence the data is published under, as the council configured it.
async function showLicence() {
  const l = await get('/open-data/licence.json');
  document.getElementById('licence').replaceChildren(`Published by ${l.publisher} under the `,
    el('a', { href: l.url, rel: 'license' }, l.name), '. You may copy, publish and adapt it, saying where it came from.');
}

function drawAreas(body) {
  const tbody = document.getElementById('areas');
  tbody.replaceChildren(...body.areas.map((a) => el('tr', { dataset: { area: a.area } },
    el('th', { scope: 'row' }, a.area),
    td('Homes', { class: 'num' }, String(a.homes)),
    td('With readings', { class: 'num' }, String(a.homes_with_data)),
    ...LEVEL_COLUMNS.map(([lvl, label]) => td(label, { class: 'num' }, share(a.share[lvl]))),
    td('Mean temperature', { class: 'num' }, degrees(a.mean_temperature)),
    td('Mean humidity', { class: 'num' }, percent(a.mean_relative_humidity)))));
  if (!body.areas.length) tbody.append(el('tr', {}, el('td', { colspan: '11' }, `No area has ${body.min_homes} or more homes with readings yet.`)));
  const n = body.withheld_areas;
  document.getElementById('withheld').textContent = n
    ? `${n} ${n === 1 ? 'area is' : 'areas are'} not shown because fewer than ${body.min_homes} of ${n === 1 ? 'its' : 'their'} homes have readings.`
    : `Every area has at least ${body.min_homes} homes with readings.`;
}

optionalUser();
showLicence().catch(failed);
try {
  const [roads, gritting, areas] = await Promise.all([
    get('/open-data/roads.geojson'), get('/open-data/gritting.geojson'), get('/open-data/homes-by-area.json'),
  ]);
  drawAreas(areas);
  await drawRoads(roads, gritting);
} catch (err) {
  failed(err);
}
