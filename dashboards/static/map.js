// The map of routes and road stations, on the highways and public pages: Leaflet (vendored from the npm registry,
// served by Placewatch), on the council's tiles when PLACEWATCH_MAP_TILE_URL names a tile server, and always
// drawable without them: on a network with no tile server the routes and stations stand on a plain background.
// Web Mercator keeps shapes true locally (a north-south kilometre is as long as an east-west one), and the view
// fits the features. Routes take the colour and line style of their decision (with a key); station labels that
// would overlap are moved round their dot, or hidden until there is room (zoom in); popups say it all by name.

import './vendor/leaflet/leaflet.js'; // Leaflet 1.9.4: sets window.L (see vendor/leaflet/VENDOR.md)
import { ACTIONS, el, roadDegrees, STATUSES, when } from './common.js';

export const LEAFLET_VERSION = '1.9.4';
const L = window.L;
// Leaflet draws dashes as SVG dash arrays (pixels); the names are common.js's ACTIONS[].dash.
const DASH = { solid: null, dash: '14 9', dot: '2 9', dashdot: '12 7 2 7', longdash: '22 8', longdashdot: '22 7 2 7' };
const LABEL_DIRECTIONS = ['right', 'left', 'top', 'bottom'];
const TILE_FAILURES_TO_REPORT = 4;
const READINGS = [
  ['road_surface_temperature', 'Road surface temperature', roadDegrees],
  ['air_temperature', 'Air temperature', roadDegrees],
  ['dew_point', 'Dew point', roadDegrees],
  ['surface_state', 'Road surface', (v) => v],
];

let settingsOnce = null;
let stylesOnce = null;

// The map's settings from the server: {tile_url, attribution, max_zoom} (tile_url null: no tiles).
export function mapSettings() {
  if (!settingsOnce) {
    settingsOnce = fetch('/map/settings.json', { headers: { Accept: 'application/json' }, cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : { tile_url: null, attribution: '', max_zoom: 19 }))
      .catch(() => ({ tile_url: null, attribution: '', max_zoom: 19 }));
  }
  return settingsOnce;
}

// Leaflet's stylesheet and ours, linked once (files of this origin: the pages' CSP allows them).
function styles() {
  if (!stylesOnce) {
    stylesOnce = Promise.all(['/static/vendor/leaflet/leaflet.css', '/static/map.css'].map((href) => new Promise((resolve) => {
      const link = el('link', { rel: 'stylesheet', href });
      link.addEventListener('load', resolve);
      link.addEventListener('error', resolve);
      document.head.append(link);
    })));
  }
  return stylesOnce;
}

function latlngs(geometry) {
  if (!geometry) return [];
  const flip = (line) => line.map(([lon, lat]) => [lat, lon]);
  if (geometry.type === 'LineString') return [flip(geometry.coordinates)];
  if (geometry.type === 'MultiLineString') return geometry.coordinates.map(flip);
  return [];
}

function actionOf(route) {
  return ACTIONS[route.action] ? route.action : 'unknown';
}

function readingLines(station) {
  const rows = [];
  for (const [metric, label, fmt] of READINGS) {
    const r = station.latest && station.latest[metric];
    if (!r || r.value === null || r.value === undefined) continue;
    rows.push(el('li', {}, `${label}: ${fmt(r.value)}`, r.ts ? el('span', { class: 'pw-map-popup__when' }, ` (${when(r.ts)})`) : null));
  }
  return rows.length ? el('ul', { class: 'pw-map-popup__readings' }, rows) : el('p', { class: 'pw-map-popup__none' }, 'No readings yet.');
}

function stationPopup(station) {
  return el('div', { class: 'pw-map-popup' }, el('h3', {}, station.name || station.id), readingLines(station));
}

function routePopup(route, stationsById, link) {
  const a = ACTIONS[actionOf(route)];
  const box = el('div', { class: 'pw-map-popup' }, el('h3', {}, route.name));
  const status = route.status ? ` (${(STATUSES[route.status] || route.status).toLowerCase()})` : '';
  box.append(el('p', { class: 'pw-map-popup__decision' }, el('strong', {}, a.label), status));
  if (route.message) box.append(el('p', {}, route.message));
  for (const sid of route.stations || []) {
    const s = stationsById.get(sid);
    box.append(el('h4', {}, s ? s.name || s.id : sid), s ? readingLines(s) : el('p', { class: 'pw-map-popup__none' }, 'Not in the registry.'));
  }
  if (link) box.append(el('p', {}, el('a', { href: link }, 'Go to the route')));
  return box;
}

// A route's label: its id when its name starts with it ("P1 A456 Hagley Road..." is "P1"), else its name.
function shortName(r) {
  const first = String(r.name || '').split(/\s+/)[0];
  return first && first === r.id ? r.id : r.name || r.id;
}

// A station's label: its name and road surface temperature; on a narrow map (a phone) the temperature alone.
function stationLabel(s, narrow) {
  const r = s.latest && s.latest.road_surface_temperature;
  const value = r && typeof r.value === 'number' ? roadDegrees(r.value) : 'no reading';
  return narrow ? value : `${s.name || s.id}: ${value}`;
}

function overlaps(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

// Place labels in priority order: each tries the sides of its feature and takes the first that overlaps neither a
// label already placed nor a station's dot, inside the map; a label with no free side is hidden (its feature's popup still says
// everything, and zooming in makes room).
function declutter(view) {
  const frame = view.map.getContainer().getBoundingClientRect();
  const inside = (b) => b.left >= frame.left && b.right <= frame.right && b.top >= frame.top && b.bottom <= frame.bottom;
  const placed = view.dots.map((d) => d.getElement()).filter(Boolean).map((e) => e.getBoundingClientRect());
  for (const item of view.labels) {
    const tip = item.tooltip;
    let shown = false;
    for (const dir of item.directions) {
      tip.options.direction = dir;
      tip.update();
      const node = tip.getElement();
      if (!node) break;
      node.classList.remove('pw-label--hidden');
      const box = node.getBoundingClientRect();
      if (inside(box) && !placed.some((p) => overlaps(p, box))) {
        placed.push(box);
        shown = true;
        break;
      }
    }
    const node = tip.getElement();
    if (node && !shown) node.classList.add('pw-label--hidden');
  }
}

function legend(node, routes) {
  const present = new Set(routes.map(actionOf));
  const list = el('ul', { class: 'pw-map-legend', 'aria-label': 'Key to the map' });
  for (const [action, a] of Object.entries(ACTIONS)) {
    if (!present.has(action)) continue;
    const sample = el('span', { class: 'pw-map-legend__line', 'aria-hidden': 'true' });
    sample.style.borderTopColor = a.colour;
    sample.style.borderTopStyle = a.dash === 'solid' ? 'solid' : a.dash === 'dot' ? 'dotted' : 'dashed';
    list.append(el('li', { dataset: { action } }, sample, a.label));
  }
  list.append(el('li', {}, el('span', { class: 'pw-map-legend__dot', 'aria-hidden': 'true' }), 'Road station, with its road surface temperature'));
  let box = node.nextElementSibling;
  if (!box || !box.classList.contains('pw-map-legend')) {
    node.after(list);
  } else {
    box.replaceWith(list);
  }
  box = list;
  return box;
}

function note(node, text) {
  let p = node.parentElement.querySelector('.pw-map-note');
  if (!p) {
    p = el('p', { class: 'pw-map-note', role: 'status' });
    node.parentElement.append(p);
  }
  p.textContent = text;
}

function tilesLayer(map, node, settings) {
  if (!settings.tile_url) {
    note(node, 'No map tiles are configured: routes and stations are drawn on a plain background.');
    return;
  }
  let failures = 0;
  let loaded = 0;
  const layer = L.tileLayer(settings.tile_url, { attribution: settings.attribution || '', maxZoom: settings.max_zoom || 19 });
  layer.on('tileload', () => { loaded += 1; });
  layer.on('tileerror', () => {
    failures += 1;
    if (failures === TILE_FAILURES_TO_REPORT && !loaded) {
      let host = settings.tile_url;
      try { host = new URL(settings.tile_url.replace(/\{[^}]*\}/g, 'a')).host; } catch { /* keep the template */ }
      node.classList.add('pw-map--no-tiles');
      note(node, `The map tiles could not be loaded from ${host}: routes and stations are drawn on a plain background.`);
    }
  });
  layer.addTo(map);
}

// Draw (or redraw) the map in `node`.
// routes: [{id, name, geometry, action, status, message, stations: [ids]}]
// stations: [{id, name, geometry (Point), latest: {metric: {value, ts}}}]
// link(route): an address for the route's own card, or null.
export async function routeMap(node, routes, stations, { link = null } = {}) {
  if (!L) throw new Error('the map library did not load');
  await styles();
  const settings = await mapSettings();
  let view = node.pwMap;
  if (!view) {
    node.replaceChildren();
    node.classList.add('pw-map');
    const map = L.map(node, { zoomSnap: 0.25, zoomControl: true, attributionControl: true, worldCopyJump: false });
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    L.control.scale({ imperial: false, position: 'topright' }).addTo(map);
    tilesLayer(map, node, settings);
    view = { map, features: L.featureGroup().addTo(map), labels: [], dots: [], fitted: false };
    map.on('zoomend moveend resize', () => declutter(view));
    node.pwMap = view;
  }
  const { map, features } = view;
  features.clearLayers();
  const stationLabels = [];
  const routeLabels = [];
  view.dots = [];
  const narrow = node.clientWidth < 560;
  const placedStations = stations.filter((s) => s.geometry && s.geometry.type === 'Point');
  const byId = new Map(stations.map((s) => [s.id, s]));
  // Treating decisions draw last (on top) and label first.
  const order = Object.keys(ACTIONS);
  const drawn = [...routes].filter((r) => latlngs(r.geometry).length)
    .sort((a, b) => order.indexOf(actionOf(b)) - order.indexOf(actionOf(a)));
  for (const r of drawn) {
    const a = ACTIONS[actionOf(r)];
    const lines = latlngs(r.geometry);
    L.polyline(lines, { color: '#ffffff', weight: 10, opacity: 0.9, interactive: false }).addTo(features);
    const line = L.polyline(lines, {
      color: a.colour, weight: 6, opacity: 1, dashArray: DASH[a.dash] || null, lineCap: a.dash === 'dot' ? 'round' : 'butt',
      className: `pw-route pw-route--${actionOf(r)}`,
    }).addTo(features);
    line.bindPopup(() => routePopup(r, byId, link ? link(r) : null), { maxWidth: 320 });
    const name = shortName(r);
    const text = narrow && name.length > 10 ? a.label : `${name}: ${a.label}`; // a phone: the decision at least
    line.bindTooltip(text, { permanent: true, direction: 'top', offset: [0, -6], className: 'pw-label pw-label--route' });
    routeLabels.unshift({ tooltip: line.getTooltip(), directions: ['top', 'bottom', 'right', 'left'] });
  }
  const coldFirst = [...placedStations].sort((x, y) => rstOf(x) - rstOf(y));
  for (const s of coldFirst) {
    const [lon, lat] = s.geometry.coordinates;
    const dot = L.circleMarker([lat, lon], {
      radius: 7, color: '#ffffff', weight: 2, fillColor: '#0b0c0c', fillOpacity: 1, className: 'pw-station',
    }).addTo(features);
    dot.bindPopup(() => stationPopup(s), { maxWidth: 300 });
    dot.bindTooltip(stationLabel(s, narrow), { permanent: true, direction: 'right', offset: [8, 0], className: 'pw-label pw-label--station' });
    stationLabels.push({ tooltip: dot.getTooltip(), directions: LABEL_DIRECTIONS });
    view.dots.push(dot);
  }
  // Stations first (coldest first): their road temperatures are what a duty officer reads the map for; then
  // routes, those that need treatment first (the colour and the key say the decision of any left unlabelled).
  view.labels = [...stationLabels, ...routeLabels];
  legend(node, drawn);
  node.dataset.routes = String(drawn.length);
  node.dataset.stations = String(placedStations.length);
  if (!drawn.length && !placedStations.length) {
    note(node, 'Nothing to draw yet: no routes or stations with a place in the registry.');
    map.setView([54.5, -3], 5);
  } else if (!view.fitted) {
    map.fitBounds(features.getBounds(), { padding: [36, 36], maxZoom: 15 });
    view.fitted = true;
  }
  declutter(view);
  return view;
}

function rstOf(s) {
  const r = s.latest && s.latest.road_surface_temperature;
  return r && typeof r.value === 'number' ? r.value : Infinity;
}
