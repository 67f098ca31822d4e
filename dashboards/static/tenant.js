// A home: the risk of damp and mould in plain words, what to do and what the landlord is doing, and the
// temperature and humidity in each room. A tenant sees their own home; an officer or admin opens a home
// with ?home=ID. Whatever the address bar says, the API decides: any other home is "not found".

import { api, ApiError, degrees, el, failed, LEVELS, percent, requireUser, when, ago } from './common.js';
import { showEmpty, timeChart } from './charts.js';

const EXPLAIN = {
  emergency: 'Your landlord has confirmed a serious risk to health. They must make your home safe within 24 hours.',
  red: 'The readings from your home show conditions in which mould is likely to grow. Your landlord has been told.',
  watch: 'The readings show conditions that could lead to damp or mould if they carry on.',
  advice: 'Mostly fine, with some spells of high humidity. The tips below can help.',
  green: 'The readings show no sign of the conditions that lead to damp and mould.',
  insufficient_data: 'We need more readings from your sensors before we can say. Check that they are switched on.',
  not_assessed: 'We have not looked at the readings from your home yet.',
};
const STATUS_WORDS = { online: 'working', offline: 'switched off or out of range', stale: 'not heard from recently' };

function roomName(s) {
  const r = s.room || s.name || s.id;
  return r[0].toUpperCase() + r.slice(1);
}

function notFound(text) {
  document.getElementById('home-heading').textContent = 'Home not found';
  document.getElementById('address').textContent = text;
  document.getElementById('home').hidden = true;
}

function showLevel(home) {
  const damp = home.damp;
  const level = home.case && home.case.emergency ? 'emergency' : damp.level;
  const words = LEVELS[level] || { label: level, plain: level };
  const badge = document.getElementById('level-badge');
  badge.className = `badge badge--${level}`;
  badge.textContent = `${words.label}: ${words.plain}`;
  document.getElementById('level-panel').dataset.level = level;
  document.getElementById('level-text').textContent = EXPLAIN[level] || '';
  document.getElementById('assessed').textContent = damp.assessed_at ? `Last checked ${when(damp.assessed_at)}.` : '';
  const reasons = document.getElementById('reasons');
  reasons.replaceChildren(...(damp.reasons || []).map((r) => el('li', {}, r)));
  document.getElementById('why').hidden = !(damp.reasons || []).length;
}

function showAdvice(home) {
  const list = document.getElementById('advice');
  const items = (home.advice || []).map((a) => el('li', {}, a));
  if (!items.length) items.push(el('li', {}, 'There is nothing you need to do at the moment.'));
  list.replaceChildren(...items);
}

function showSensors(home) {
  const list = document.getElementById('sensors');
  list.replaceChildren(...home.sensors.map((s) => {
    const t = s.latest.temperature;
    const h = s.latest.relative_humidity;
    const now = [t ? degrees(t.value) : null, h ? `${percent(h.value)} humidity` : null].filter(Boolean).join(', ');
    return el('li', {}, el('strong', {}, roomName(s)), `: ${STATUS_WORDS[s.status] || s.status}`,
      s.last_seen ? `, last reading ${ago(s.last_seen)}` : '', now ? ` (${now})` : '');
  }));
  if (!home.sensors.length) list.append(el('li', {}, 'No sensors are fitted yet.'));
}

async function readings(sensor, metric, days) {
  const start = new Date(Date.now() - days * 24 * 3600 * 1000).toISOString();
  const bucket = days >= 7 ? '&bucket=1h' : '';
  const r = await api(`/api/v1/devices/${encodeURIComponent(sensor.id)}/readings?metric=${metric}&start=${encodeURIComponent(start)}${bucket}`);
  return r.points.map((p) => ({ ts: p.ts, value: p.value !== undefined ? p.value : p.avg })).filter((p) => typeof p.value === 'number');
}

function latestText(series, fmt) {
  return series.map((s) => `${s.name} ${fmt(s.points[s.points.length - 1].value)}`).join(', ');
}

async function drawCharts(home) {
  const days = Number(document.getElementById('range').value);
  const span = days === 1 ? 'the last 24 hours' : `the last ${days} days`;
  const sensors = home.sensors.filter((s) => s.latest.temperature || s.latest.relative_humidity);
  const specs = [
    ['temperature', 'temperature-chart', 'temperature-caption', '°C', 'Temperature (°C)', 18, '18 °C: the lowest healthy temperature',
      (x) => degrees(x), 'Temperature'],
    ['relative_humidity', 'humidity-chart', 'humidity-caption', '%', 'Humidity (%)', 70, '70 %: too damp if it stays above this',
      (x) => percent(x), 'Humidity'],
  ];
  await Promise.all(specs.map(async ([metric, chartId, captionId, unit, yTitle, threshold, label, fmt, what]) => {
    const chart = document.getElementById(chartId);
    const caption = document.getElementById(captionId);
    const withMetric = sensors.filter((s) => s.latest[metric]);
    const series = (await Promise.all(withMetric.map(async (s) => ({ name: roomName(s), points: await readings(s, metric, days) }))))
      .filter((s) => s.points.length);
    if (!series.length) {
      showEmpty(chart, `No ${what.toLowerCase()} readings in ${span}.`);
      caption.textContent = `${what} in each room over ${span}: no readings.`;
      return;
    }
    caption.textContent = `${what} in each room over ${span}. Latest: ${latestText(series, fmt)}. The dotted line marks ${label}.`;
    await timeChart(chart, series, { unit, yTitle, threshold, thresholdLabel: label });
  }));
}

const who = await requireUser();
if (who) {
  const asked = new URLSearchParams(location.search).get('home');
  const homeId = asked || who.home_id;
  if (!homeId) {
    notFound(who.role === 'tenant'
      ? 'Your account is not linked to a home yet. Please contact your landlord.'
      : 'Choose a home from the Homes page to see its readings.');
  } else {
    try {
      const home = await api(`/api/v1/homes/${encodeURIComponent(homeId)}`);
      document.getElementById('home-heading').textContent = who.role === 'tenant' ? 'Your home' : `Home ${home.id}`;
      document.getElementById('address').textContent = home.address || '';
      document.getElementById('home').hidden = false;
      showLevel(home);
      showAdvice(home);
      showSensors(home);
      const range = document.getElementById('range');
      range.addEventListener('change', () => drawCharts(home).catch(failed));
      await drawCharts(home);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
        notFound('We could not find that home, or it is not one you can see.');
      } else {
        failed(err);
      }
    }
  }
}
