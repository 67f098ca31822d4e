// A home's temperature and humidity charts, one line per room (the tenant's page and the officer's home view
// share them): the range chosen in #range, hourly means beyond a day, the healthy thresholds dotted.

import { api, degrees, percent } from './common.js';
import { showEmpty, timeChart } from './charts.js';

export function roomName(s) {
  const r = s.room || s.name || s.id;
  return r[0].toUpperCase() + r.slice(1);
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

export async function drawCharts(home) {
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
