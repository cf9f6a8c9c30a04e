// The fleet as the dashboard knows it: one record per device, loaded from GET /devices, then kept
// live by fleet_summary frames (compact per-device rows, only changed devices, about once a second)
// and the fleet channel's status, score and alert frames. Views read it; nothing here touches the DOM.
import { json } from './api.js';
import { parseTime } from './format.js';

export const devices = new Map();
/** Active alerts of the fleet by alert id (from GET /alerts, then the live frames). */
export const activeAlerts = new Map();
/** Online/offline counts over time: the hub's last 24 h (GET /fleet/history), then the page's own samples: [times(s)], [online], [offline]. */
export const history = [[], [], []];

let version = 0;
/** Changes when devices are added or removed (not when their readings change). */
let membership = 0;
export const currentMembership = () => membership;
const listeners = new Set();
let scheduled = false;

/** Listeners run at most once per animation frame, however many frames arrived. */
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
export const currentVersion = () => version;

function changed() {
  version++;
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    for (const fn of listeners) fn(version);
  });
}

function record(id) {
  let d = devices.get(id);
  if (!d) membership++;
  if (!d) devices.set(id, (d = { id, type: null, name: null, status: 'unknown', last_seen: null, battery_level: null, rssi: null, score: null, active_alerts: 0, flapping: false }));
  return d;
}

export async function loadDevices() {
  const seen = new Set();
  for (let offset = 0; ; offset += 1000) {
    const page = await json(`/devices?limit=1000&offset=${offset}`);
    for (const r of page.devices) {
      seen.add(r.device_id);
      Object.assign(record(r.device_id), {
        type: r.type, name: r.name, status: r.status, flapping: r.flapping, last_seen: parseTime(r.last_seen),
        battery_level: r.battery_level, rssi: r.rssi, score: r.health_score, active_alerts: r.active_alerts,
      });
    }
    if (offset + 1000 >= page.total) break;
  }
  for (const id of devices.keys()) if (!seen.has(id) && devices.delete(id)) membership++;
  changed();
}

export async function loadActiveAlerts() {
  const page = await json('/alerts?state=active&limit=1000');
  activeAlerts.clear();
  for (const a of page.alerts) activeAlerts.set(a.alert_id, { alert_id: a.alert_id, device_id: a.device_id, severity: a.severity, anomaly_type: a.anomaly_type });
  changed();
}

let fullSeen = null; // ids of a full summary being received in chunks

function applySummary(f) {
  if (f.full && fullSeen === null) fullSeen = new Set();
  for (const s of f.devices) {
    fullSeen?.add(s.id);
    const d = record(s.id);
    d.type = s.type;
    d.name = s.name;
    d.status = s.status;
    d.last_seen = parseTime(s.last_seen);
    d.battery_level = s.battery_level;
    d.rssi = s.rssi;
    d.score = s.score;
    d.active_alerts = s.active_alerts;
    d.flapping = s.flapping;
  }
  for (const id of f.removed ?? []) if (devices.delete(id)) membership++;
  if (f.full && f.last) {
    // A full summary is the whole fleet: devices it does not name are gone.
    for (const id of devices.keys()) if (!fullSeen.has(id) && devices.delete(id)) membership++;
    fullSeen = null;
  }
}

/** One frame of the fleet feed. */
export function applyFleetFrame(f) {
  if (f.type === 'fleet_summary') applySummary(f);
  else if (f.device_id === '*' || f.device_id === undefined) {
    // `*` is the fleet itself (a mass-offline incident): an alert, not a device.
    if (f.type === 'anomaly_alert') applyAlert(f);
  } else if (f.type === 'status_change') {
    const d = record(f.device_id);
    d.status = f.status;
    d.flapping = f.flapping;
    d.last_seen = parseTime(f.last_seen) ?? d.last_seen;
  } else if (f.type === 'health_score') record(f.device_id).score = f.score;
  else if (f.type === 'anomaly_alert') applyAlert(f);
  else return;
  changed();
}

function applyAlert(f) {
  // Counted as alerts come and go (the fleet channel and a device channel may both deliver a frame).
  const d = devices.get(f.device_id);
  if (f.state === 'raised' && !activeAlerts.has(f.alert_id)) {
    activeAlerts.set(f.alert_id, { alert_id: f.alert_id, device_id: f.device_id, severity: f.severity, anomaly_type: f.anomaly_type });
    if (d) d.active_alerts = (d.active_alerts ?? 0) + 1;
  } else if (f.state === 'cleared' && activeAlerts.delete(f.alert_id) && d) d.active_alerts = Math.max(0, (d.active_alerts ?? 1) - 1);
}

/** Counts for the panels, in one pass over the fleet. */
export function totals() {
  const t = { devices: devices.size, online: 0, offline: 0, unknown: 0, flapping: 0, buckets: [0, 0, 0, 0, 0], types: new Map() };
  for (const d of devices.values()) {
    t[d.status === 'online' ? 'online' : d.status === 'offline' ? 'offline' : 'unknown']++;
    if (d.flapping) t.flapping++;
    if (typeof d.score === 'number') t.buckets[Math.min(4, Math.floor(d.score / 20))]++;
    const type = d.type ?? 'untyped';
    const byType = t.types.get(type) ?? { online: 0, total: 0 };
    byType.total++;
    if (d.status === 'online') byType.online++;
    t.types.set(type, byType);
  }
  return t;
}

const SAMPLE_MS = 10_000; // as often as the hub samples (FLEET_COUNTS_SAMPLE_MS)
const KEEP = 8640; // 24 h of 10 s samples, like the hub
/** One sample of the page's own, appended after the hub's history. */
export function sample() {
  const t = totals();
  history[0].push(Date.now() / 1000);
  history[1].push(t.online);
  history[2].push(t.offline);
  if (history[0].length > KEEP) for (const s of history) s.splice(0, s.length - KEEP);
}

/**
 * The last 24 h of the fleet's counts from GET /fleet/history, before the samples the page takes
 * itself. A hub without it (404) or a key limited to devices (403: the counts are fleet-wide) leaves
 * the panel to the page's own samples.
 */
export async function loadHistory() {
  let page;
  try {
    page = await json('/fleet/history');
  } catch {
    return;
  }
  const { time_s: times, online, offline } = page.samples;
  const after = history[0].length > 0 ? history[0][0] : Infinity;
  const keep = times.findIndex((t) => t >= after); // the page's own samples from then on are newer
  const end = keep === -1 ? times.length : keep;
  history[0].unshift(...times.slice(0, end));
  history[1].unshift(...online.slice(0, end));
  history[2].unshift(...offline.slice(0, end));
  if (history[0].length > KEEP) for (const s of history) s.splice(0, s.length - KEEP);
  changed();
}
setInterval(sample, SAMPLE_MS);

/** Raw fleet frames for views that keep their own lists (the alerts view). */
const frameListeners = new Set();
export function onFleetFrame(fn) {
  frameListeners.add(fn);
  return () => frameListeners.delete(fn);
}
export function publish(f) {
  applyFleetFrame(f);
  for (const fn of frameListeners) fn(f);
}
