// Charts with Plotly (served from the installed plotly package, loaded by the page before this module): time series
// in UK time. The map of routes and stations is map.js (Leaflet).

import { el, ukWall } from './common.js';

const FONT = { family: 'system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif', size: 13, color: '#0b0c0c' };
const CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ['lasso2d', 'select2d', 'autoScale2d', 'toggleSpikelines'],
};
// Distinct colours (each at least 3:1 on white) and line styles, so series differ by more than colour.
export const PALETTE = ['#1d4f91', '#d35400', '#00703c', '#4c2c92', '#a4161a', '#505a5f'];
const DASHES = ['solid', 'dash', 'dot', 'dashdot', 'longdash', 'longdashdot'];

function narrow() {
  return window.matchMedia('(max-width: 40rem)').matches;
}

function plotly() {
  if (!window.Plotly) throw new Error('the chart library did not load');
  return window.Plotly;
}

// Clear a "no data" message before drawing; a node that already holds a plot is left for Plotly.react to update.
function prepare(node) {
  if (!node.classList.contains('js-plotly-plot')) node.replaceChildren();
}

export function showEmpty(node, text) {
  if (window.Plotly) window.Plotly.purge(node);
  node.classList.remove('js-plotly-plot');
  node.replaceChildren(el('p', { class: 'empty' }, text));
}

// series: [{name, points: [{ts, value}]}]; draws one line per series, with an optional dotted threshold.
export function timeChart(node, series, { unit = '', yTitle = '', threshold, thresholdLabel, height, small = false } = {}) {
  const traces = series.map((s, i) => ({
    type: 'scatter',
    mode: s.points.length < 3 ? 'lines+markers' : 'lines',
    name: s.name,
    x: s.points.map((p) => ukWall(p.ts)),
    y: s.points.map((p) => p.value),
    line: { color: s.colour || PALETTE[i % PALETTE.length], width: 2.5, dash: s.dash || DASHES[i % DASHES.length] },
    hovertemplate: `%{y:.1f} ${unit}`,
    connectgaps: false,
  }));
  const shapes = [];
  const annotations = [];
  if (threshold !== undefined) {
    shapes.push({ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: threshold, y1: threshold, line: { color: '#a4161a', width: 1.5, dash: 'dot' } });
    if (thresholdLabel) {
      annotations.push({
        xref: 'paper', x: 1, xanchor: 'right', y: threshold, yanchor: 'bottom', text: thresholdLabel, showarrow: false,
        font: { size: 12, color: '#a4161a' }, bgcolor: 'rgba(255,255,255,0.85)',
      });
    }
  }
  const layout = {
    font: FONT,
    height: height || (small ? 240 : narrow() ? 280 : 320),
    margin: { l: 56, r: 12, t: 8, b: 44 },
    paper_bgcolor: '#fff',
    plot_bgcolor: '#fff',
    xaxis: { type: 'date', gridcolor: '#e5e5e5', linecolor: '#0b0c0c', hoverformat: '%a %-d %b %H:%M', nticks: narrow() ? 4 : 8 },
    yaxis: { title: { text: yTitle }, gridcolor: '#e5e5e5', linecolor: '#0b0c0c', zerolinecolor: '#b1b4b6' },
    legend: { orientation: 'h', x: 0, y: 1.0, yanchor: 'bottom' },
    hovermode: 'x unified',
    shapes,
    annotations,
  };
  if (threshold !== undefined) {
    // Keep the threshold in view even when every value is far from it.
    const ys = series.flatMap((s) => s.points.map((p) => p.value)).filter((v) => v !== null && v !== undefined);
    if (ys.length) {
      const lo = Math.min(threshold, ...ys);
      const hi = Math.max(threshold, ...ys);
      const pad = Math.max(1, (hi - lo) * 0.08);
      layout.yaxis.range = [lo - pad, hi + pad];
    }
  }
  prepare(node);
  return plotly().react(node, traces, layout, CONFIG);
}
