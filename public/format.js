// Units and times as people read them: every number the dashboard shows goes through here.
const NONE = '—';
const num = (v) => typeof v === 'number' && Number.isFinite(v);

/** "just now", "42 s ago", "3 min ago", "5 h ago", "2 d ago". */
export function age(ms, now = Date.now()) {
  if (!num(ms)) return NONE;
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h ago`;
}

/** A span of time: "45 s", "12 min", "3 h 5 min". */
export function duration(ms) {
  if (!num(ms)) return NONE;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** Local time; with the date when it is not today. */
export function localTime(ms) {
  if (!num(ms)) return NONE;
  return new Date(ms).toDateString() === new Date().toDateString() ? timeFormat.format(ms) : dateTimeFormat.format(ms);
}

export const percent = (v) => (num(v) ? `${Math.round(v)} %` : NONE);
export const dbm = (v) => (num(v) ? `${Math.round(v)} dBm` : NONE);
export const millis = (v) => (num(v) ? `${Math.round(v)} ms` : NONE);
export const score = (v) => (num(v) ? (Math.round(v * 10) / 10).toFixed(1) : NONE);
export const count = (v) => (num(v) ? v.toLocaleString() : NONE);
export const ratio = (v) => (num(v) ? `${(v * 100).toFixed(1)} %` : NONE);
export const plain = (v) => (num(v) ? String(Math.round(v * 100) / 100) : NONE);

/**
 * Units of common sensor metrics (the names Zigbee2MQTT, Tasmota and ESPHome devices report), and
 * of the built-in readings. Others come from the hub's METRIC_UNITS (GET /metric-units).
 */
export const BUILT_IN_UNITS = Object.freeze({
  battery_level: '%', battery: '%', rssi: 'dBm', error_rate: '%',
  temperature: '°C', temp: '°C', humidity: '%', pressure: 'hPa', voltage: 'V', current: 'A', power: 'W',
  energy: 'kWh', linkquality: 'lqi', illuminance: 'lx', illuminance_lux: 'lx', co2: 'ppm', voc: 'ppb',
  pm25: 'µg/m³', pm10: 'µg/m³', noise: 'dB', soil_moisture: '%', wind_speed: 'm/s', rain: 'mm', flow: 'L/min',
});
let extraUnits = {};
/** The hub's METRIC_UNITS (they win over the built-in ones). */
export function setMetricUnits(units) {
  extraUnits = units && typeof units === 'object' ? { ...units } : {};
}

/** The unit of a reading or rule metric, for values, thresholds and chart axes ('' when unknown). */
export function unitOf(metric) {
  const m = String(metric ?? '').replace(/^metrics\./, '');
  if (Object.hasOwn(extraUnits, m)) return extraUnits[m];
  if (Object.hasOwn(BUILT_IN_UNITS, m)) return BUILT_IN_UNITS[m];
  if (m.startsWith('response_time')) return 'ms';
  // temperature_c, outdoor_temperature, humidity_2…: the known name inside it.
  const known = Object.keys(BUILT_IN_UNITS).find((name) => name.length > 3 && (m.startsWith(`${name}_`) || m.endsWith(`_${name}`)));
  return known ? BUILT_IN_UNITS[known] : '';
}

/** A reading with its unit; error rates are stored as a 0–1 share and shown as percent. */
export function reading(metric, v) {
  if (!num(v)) return NONE;
  const m = String(metric ?? '').replace(/^metrics\./, '');
  if (m === 'error_rate') return `${(v * 100).toFixed(1)} %`;
  const unit = unitOf(m);
  const shown = Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 100) / 100;
  return unit ? `${shown} ${unit}` : String(shown);
}

/** Score bands of docs/health-and-alerts.md, named so colour is never the only signal. */
export function scoreBand(v) {
  if (!num(v)) return 'none';
  return v >= 80 ? 'good' : v >= 50 ? 'fair' : 'poor';
}

export const SEVERITIES = ['critical', 'major', 'minor', 'warning', 'info'];
export const severityIcon = (s) => (s === 'critical' || s === 'major' ? 'warn' : s === 'info' ? 'info' : 'warn');
export const statusIcon = (s) => (s === 'online' ? 'online' : s === 'offline' ? 'offline' : 'unknown');
export const parseTime = (iso) => (iso ? Date.parse(iso) : null);
