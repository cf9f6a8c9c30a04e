// A device's readings over 15 min, 1 h, 24 h or 7 d: raw history for 15 min, minute or hour
// buckets from GET /devices/{id}/metrics for longer ranges, then live points from device_update.
import { enc, json } from './api.js';
import { timeChart } from './charts.js';
import { h } from './dom.js';
import { dbm, millis, percent, reading, unitOf } from './format.js';

const RANGES = [['15m', '15 min', 15 * 60_000], ['1h', '1 h', 3600_000], ['24h', '24 h', 86_400_000], ['7d', '7 d', 7 * 86_400_000]];
/** The built-in rules' thresholds (docs/health-and-alerts.md), used until an alert of the device names its own. */
const DEFAULT_THRESHOLDS = { battery_level: 20, error_rate: 0.1, response_time_ms: 1000 };
const STANDARD = [
  { field: 'battery_level', title: 'Battery', yLabel: 'Battery (%)', format: percent, range: [0, 100] },
  { field: 'rssi', title: 'Signal strength', yLabel: 'RSSI (dBm)', format: dbm },
  { field: 'response_time_ms', title: 'Response time', yLabel: 'Response time (ms)', format: millis },
  { field: 'error_rate', title: 'Error rate', yLabel: 'Error rate (%)', format: (v) => (typeof v === 'number' ? `${(v * 100).toFixed(1)} %` : '—'), range: [0, null] },
];
const MAX_SENSORS = 6;

export function deviceCharts(deviceId, { sensors, thresholds }) {
  let range = RANGES[1];
  const specs = [...STANDARD, ...sensors.slice(0, MAX_SENSORS).map((name) => ({ field: name, sensor: true, title: name, yLabel: unitOf(name) ? `${name} (${unitOf(name)})` : name, format: (v) => reading(name, v) }))];
  const series = new Map(); // field → { x:[], y:[] }
  const charts = new Map();
  const buttons = RANGES.map((r) => h('button', { type: 'button', class: 'seg', 'aria-pressed': String(r === range), onclick: () => select(r) }, r[1]));
  const grid = h('div', { class: 'chart-grid' });
  const status = h('p', { class: 'muted', role: 'status' });
  const root = h('section', { class: 'panel', 'aria-label': 'Metrics' },
    h('div', { class: 'panel-head' }, h('h2', { class: 'panel-title' }, 'Metrics'), h('div', { class: 'segmented', role: 'group', 'aria-label': 'Time range' }, ...buttons)),
    status, grid);

  for (const spec of specs) {
    const box = h('div', { class: 'chart-box', 'data-chart': spec.field });
    grid.append(h('figure', { class: 'chart-card' }, h('figcaption', {}, spec.title), box));
    series.set(spec.field, { x: [], y: [] });
  }

  function build() {
    for (const spec of specs) {
      const box = grid.querySelector(`[data-chart="${CSS.escape(spec.field)}"]`);
      const threshold = thresholds[spec.field] ?? DEFAULT_THRESHOLDS[spec.field];
      const range2 = spec.range ? (u, min, max) => [spec.range[0] ?? min, spec.range[1] ?? (Math.max(max, threshold ?? max) * 1.1 || 1)] : undefined;
      charts.get(spec.field)?.destroy();
      charts.set(spec.field, timeChart(box, { yLabel: spec.yLabel, series: [{ label: spec.title, fill: true }], thresholds: typeof threshold === 'number' ? [{ label: 'Threshold', value: threshold }] : [], format: spec.format, range: range2, window: () => [(Date.now() - range[2]) / 1000, Date.now() / 1000] }));
    }
  }

  function draw() {
    const cutoff = (Date.now() - range[2]) / 1000;
    for (const spec of specs) {
      const s = series.get(spec.field);
      while (s.x.length > 0 && s.x[0] < cutoff) {
        s.x.shift();
        s.y.shift();
      }
      const threshold = thresholds[spec.field] ?? DEFAULT_THRESHOLDS[spec.field];
      const data = [s.x, s.y];
      if (typeof threshold === 'number') data.push(s.x.map(() => threshold));
      charts.get(spec.field)?.setData(data);
      // How many points are drawn: tests and curious admins can see the chart move.
      grid.querySelector(`[data-chart="${CSS.escape(spec.field)}"]`).dataset.points = String(s.x.length);
    }
  }

  // Live readings that arrive while a range loads are kept and drawn after the stored ones.
  let arrived = null;
  let latest = null;

  async function load() {
    const to = Date.now();
    const from = to - range[2];
    status.textContent = `Loading ${range[1]}…`;
    arrived = [];
    for (const s of series.values()) s.x.length = s.y.length = 0;
    try {
      if (range[0] === '15m') {
        const page = await json(`/status/${enc(deviceId)}/history?limit=1000&since=${enc(new Date(from).toISOString())}`);
        for (const p of page.history.reverse()) addPoint(Date.parse(p.timestamp), { ...p, ...(p.metrics ?? {}) });
      } else {
        const bucket = range[0] === '7d' ? '1h' : '1m';
        const names = specs.filter((s) => s.sensor).map((s) => s.field).join(',');
        const page = await json(`/devices/${enc(deviceId)}/metrics?bucket=${bucket}&from=${enc(new Date(from).toISOString())}&to=${enc(new Date(to).toISOString())}${names ? `&metrics=${enc(names)}` : ''}`);
        for (const b of page.buckets) addPoint(Date.parse(b.start), Object.fromEntries(specs.map((s) => [s.field, b[s.field]?.avg ?? null])));
      }
      status.textContent = range[0] === '15m' ? 'Every reading of the last 15 min, then live.' : `Averages per ${range[0] === '7d' ? 'hour' : 'minute'}, then live readings.`;
    } catch (e) {
      status.textContent = `Could not load metrics: ${e.message}`;
    }
    // The newest reading may not be stored yet (the writer batches): the snapshot's and live ones fill in.
    for (const data of [latest, ...arrived]) if (data) addPoint(Date.parse(data.timestamp ?? data.received_at), { ...data, ...(data.metrics ?? {}) });
    arrived = null;
    draw();
  }

  function addPoint(ms, values) {
    const t = ms / 1000;
    for (const spec of specs) {
      const v = values[spec.field];
      if (typeof v !== 'number') continue;
      const s = series.get(spec.field);
      if (s.x.length > 0 && t <= s.x.at(-1)) continue; // out of order or already drawn (stored and in the snapshot): charts need rising time
      s.x.push(t);
      s.y.push(v);
    }
  }

  function select(r) {
    range = r;
    for (const [i, b] of buttons.entries()) b.setAttribute('aria-pressed', String(RANGES[i] === r));
    load();
  }

  let redraw = 0;
  return {
    root,
    /** `current`: the snapshot's latest telemetry. */
    start(current) {
      latest = current;
      build();
      load();
    },
    /** A live reading; drawn at most once per animation frame. */
    live(data) {
      latest = data;
      if (arrived) return void arrived.push(data);
      addPoint(Date.parse(data.timestamp ?? data.received_at), { ...data, ...(data.metrics ?? {}) });
      if (!redraw) redraw = requestAnimationFrame(() => ((redraw = 0), draw()));
    },
    destroy() {
      cancelAnimationFrame(redraw);
      for (const c of charts.values()) c.destroy();
    },
  };
}
