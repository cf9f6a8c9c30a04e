import { describeTextPath, findUnstorableText, mayHoldUnstorableText } from './storable-text.js';
import { addReading, DEFAULT_METRIC_DEPTH, newReadings, TOO_MANY, type OnSkip } from './readings.js';
import { validateTelemetry, type DecodeResult, type TelemetryLimits } from './telemetry.js';

/** Vigil's own telemetry fields: a fleet's reading mapped to one of these fills it. */
export const VIGIL_FIELDS = ['timestamp', 'battery_level', 'rssi', 'response_time_ms', 'error_rate'] as const;
type VigilField = (typeof VIGIL_FIELDS)[number];
const FIELDS: ReadonlySet<string> = new Set(VIGIL_FIELDS);

/** The field a validation failure is about (the others, such as a bad device id, reject the message). */
const FIELD_OF_REASON: ReadonlyMap<string, VigilField> = new Map<string, VigilField>([
  ['invalid_timestamp', 'timestamp'],
  ['timestamp_in_future', 'timestamp'],
  ['invalid_battery_level', 'battery_level'],
  ['invalid_rssi', 'rssi'],
  ['invalid_response_time', 'response_time_ms'],
  ['invalid_error_rate', 'error_rate'],
]);

/**
 * Source path (a top-level key, or a dotted path into nested objects: `Wifi.Signal`) → target: one
 * of VIGIL_FIELDS, another metric name, or '' to drop the reading (MQTT_FIELD_MAP).
 */
export type FieldMap = ReadonlyMap<string, string>;

/**
 * A payload in a fleet's own shape (Zigbee2MQTT, Tasmota, …): every key of the JSON object is a
 * reading; mapped ones fill Vigil's fields (`battery` → `battery_level`), the others are metrics,
 * flattened and made tolerant as in the Vigil payload's `metrics` (booleans 1/0, strings skipped and
 * counted). Then validated like any telemetry, so ranges and bounds are the same, except that a
 * mapped field out of its range (or a timestamp that is not one) is skipped and counted
 * (`out_of_range`) where the Vigil payload's own field rejects the message: a fleet's payload is
 * not ours to fix, and the rest of it is still good.
 */
export function decodeMappedTelemetry(
  deviceId: string,
  payload: Buffer,
  receivedAt: number,
  limits: TelemetryLimits,
  fieldMap: FieldMap,
  onSkip?: OnSkip,
): DecodeResult {
  if (payload.length > limits.maxPayloadBytes) {
    return { ok: false, reason: 'payload_too_large', detail: `payload is ${payload.length} bytes, limit ${limits.maxPayloadBytes}` };
  }
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'invalid_json', detail: 'payload is not valid JSON' };
  }
  if (mayHoldUnstorableText(payload)) {
    const at = findUnstorableText(body);
    if (at !== null) return { ok: false, reason: 'unstorable_text', detail: `${describeTextPath(at)} holds NUL or a lone surrogate, which cannot be stored` };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, reason: 'not_an_object', detail: 'payload must be a JSON object' };
  }
  const fields: Partial<Record<VigilField, unknown>> = {};
  const flat = newReadings();
  const maxDepth = limits.maxMetricDepth ?? DEFAULT_METRIC_DEPTH;
  const state = { count: 0 };
  if (!walk(body as Record<string, unknown>, '', 1, fields, flat, state, limits.maxMetricKeys, maxDepth, fieldMap, onSkip)) {
    return { ok: false, reason: 'too_many_metrics', detail: `payload has more than ${limits.maxMetricKeys} readings (flattened)` };
  }
  // The fields are validated as in the Vigil payload; the readings already are (finite, keys bounded,
  // counted). A field the validation refuses is left out (counted as out_of_range) and the rest kept:
  // a fleet's `battery: 101` is one bad reading, not a bad message.
  let result = validateTelemetry(deviceId, fields, receivedAt, limits, onSkip);
  while (!result.ok) {
    const field = FIELD_OF_REASON.get(result.reason);
    if (field === undefined || !(field in fields)) break;
    delete fields[field];
    onSkip?.('out_of_range');
    result = validateTelemetry(deviceId, fields, receivedAt, limits, onSkip);
  }
  if (!result.ok || state.count === 0) return result;
  return { ok: true, telemetry: { ...result.telemetry, metrics: flat } };
}

function walk(
  object: Record<string, unknown>,
  prefix: string,
  depth: number,
  fields: Partial<Record<VigilField, unknown>>,
  flat: Record<string, number>,
  state: { count: number },
  maxKeys: number,
  maxDepth: number,
  fieldMap: FieldMap,
  onSkip: OnSkip | undefined,
): boolean {
  for (const key in object) {
    if (!Object.hasOwn(object, key)) continue;
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const value = object[key];
    const target = fieldMap.get(path) ?? (depth === 1 && FIELDS.has(key) ? key : undefined);
    if (target === '') continue; // mapped away on purpose
    if (target !== undefined && FIELDS.has(target)) {
      fields[target as VigilField] = value;
      continue;
    }
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && target === undefined && depth < maxDepth) {
      // Descend ourselves so nested paths can be mapped too (`Wifi.Signal` → rssi).
      if (!walk(value as Record<string, unknown>, path, depth + 1, fields, flat, state, maxKeys, maxDepth, fieldMap, onSkip)) return false;
      continue;
    }
    if (depth === 1 && key === 'device_id') continue; // the topic names the device
    state.count = addReading(flat, target ?? path, value, depth, state.count, maxKeys, maxDepth, onSkip);
    if (state.count === TOO_MANY) return false;
  }
  return true;
}
