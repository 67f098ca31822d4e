// Where road forecasts stand, on the highways page: the provider's last fetch (or why it failed), each route's
// forecast and its age against the limit, and, in plain words, how far decisions reach without one.

import { api, clock, el, when } from './common.js';

function hoursText(h) {
  return `${Number.isInteger(h) ? h : h.toFixed(1)} h`;
}

function ageText(hours) {
  if (hours < 1) return `${Math.max(1, Math.round(hours * 60))} min old`;
  return `${hours < 10 ? hours.toFixed(1) : Math.round(hours)} h old`;
}

function withoutForecast(s) {
  return `decisions rest on the stations' own readings and the nowcast learned from stations' days and nights: `
    + `projected up to ${hoursText(s.learned_nowcast_hours)} ahead with a band, and never "no action" beyond what `
    + `that covers. A station without a road temperature in the last 3 h is projected from its trend alone: `
    + `credible up to ${hoursText(s.nowcast_credible_hours)}, degraded up to ${hoursText(s.nowcast_degraded_hours)}`;
}

function providerLine(p, s) {
  if (p.state === 'failing') {
    const times = p.consecutive_failures === 1 ? 'once' : `${p.consecutive_failures} times in a row`;
    const last = p.last_success_at ? ` The last good fetch was at ${when(p.last_success_at)}.` : ' It has never given a forecast.';
    return el('p', { class: 'pw-forecast__line is-error', dataset: { provider: p.provider, state: p.state } },
      el('strong', {}, `${p.name} could not give a forecast`), ` at ${when(p.last_attempt_at)} (${times}): ${p.last_error}.${last}`);
  }
  const issued = p.last_issued_at ? `, issued ${when(p.last_issued_at)}` : '';
  const line = el('p', { class: `pw-forecast__line ${p.state === 'partial' ? 'is-warning' : 'is-ok'}`, dataset: { provider: p.provider, state: p.state } },
    el('strong', {}, `Forecast from ${p.name}`), ` fetched at ${clock(p.last_success_at)}${issued}, for ${p.routes} ${p.routes === 1 ? 'route' : 'routes'}. `
    + 'The road surface temperature is derived from its air temperature, dew point, cloud and wind, with what each '
    + "station's history shows about its road against its air.");
  if (p.state === 'partial') line.append(` ${p.last_error}.`);
  return line;
}

function routeRow(r, s) {
  let state;
  if (r.issued_at === null) state = el('span', { class: 'overdue' }, 'none');
  else if (!r.usable) state = el('span', { class: 'overdue' }, `too old (limit ${hoursText(s.max_age_hours)}): not used`);
  else state = 'used';
  return el('tr', { dataset: { routeId: r.route_id, usable: String(r.usable) } },
    el('th', { scope: 'row' }, r.name),
    el('td', {}, r.source || '–'),
    el('td', {}, r.issued_at ? when(r.issued_at) : '–'),
    el('td', {}, r.age_hours === null ? '–' : ageText(r.age_hours)),
    el('td', {}, state));
}

export function renderForecast(box, s) {
  const parts = [];
  const usable = s.routes.filter((r) => r.usable);
  const missing = s.routes.filter((r) => !r.usable);
  for (const p of s.providers) parts.push(providerLine(p, s));
  if (!s.providers.length && s.configured_provider) {
    parts.push(el('p', { class: 'pw-forecast__line is-warning' }, `Forecasts are to be fetched from ${s.configured_provider}, but no fetch has been recorded yet.`));
  }
  if (!usable.length) {
    const none = s.routes.every((r) => r.issued_at === null);
    parts.push(el('p', { class: 'pw-forecast__line is-error', id: 'no-forecast' },
      el('strong', {}, none ? 'No forecast is loaded.' : `No forecast younger than ${hoursText(s.max_age_hours)} is loaded.`),
      ` Without one, ${withoutForecast(s)}.`));
    if (!s.providers.length) {
      parts.push(el('p', { class: 'hint' }, 'Load a road forecast with placewatch forecast load (or PUT /api/v1/gritting/forecast), '
        + 'or have one fetched on a schedule with PLACEWATCH_FORECAST_PROVIDER (open-meteo or met-office).'));
    }
  } else if (missing.length) {
    parts.push(el('p', { class: 'pw-forecast__line is-warning', id: 'no-forecast' },
      el('strong', {}, `${missing.length} of ${s.routes.length} routes have no usable forecast`),
      `: for ${missing.map((r) => r.name).join(', ')}, ${withoutForecast(s)}.`));
  }
  if (s.routes.length) {
    const table = el('table', { class: 'table', id: 'forecast-routes' },
      el('caption', { class: 'hint' }, `A forecast leads each decision while it is at most ${hoursText(s.max_age_hours)} old.`),
      el('thead', {}, el('tr', {}, ...['Route', 'Forecast', 'Issued', 'Age', 'In decisions'].map((t) => el('th', { scope: 'col' }, t)))),
      el('tbody', {}, s.routes.map((r) => routeRow(r, s))));
    parts.push(el('details', { class: 'pw-forecast__routes' }, el('summary', {}, 'Forecast of each route'),
      el('div', { class: 'table-wrap' }, table)));
  }
  box.replaceChildren(...parts);
}

export async function showForecast(box) {
  const s = await api('/api/v1/gritting/forecast/status');
  renderForecast(box, s);
  return s;
}
