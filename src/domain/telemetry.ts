import { isDeviceId } from './device-id.js';
import { describeTextPath, findUnstorableText, mayHoldUnstorableText } from './storable-text.js';
import { addReading, DEFAULT_METRIC_DEPTH, MAX_METRIC_KEY_LENGTH, newReadings, TOO_MANY, type OnSkip } from './readings.js';

/** One validated telemetry message. Optional readings are null when the device did not send them. */
export interface Telemetry {
  readonly deviceId: string;
  /** Device's measurement time, epoch ms (receipt time when the device sent none). */
  readonly ts: number;
  /** When the hub received it, epoch ms. */
  readonly receivedAt: number;
  readonly batteryLevel: number | null;
  readonly rssi: number | null;
  readonly responseTimeMs: number | null;
  readonly errorRate: number | null;
  readonly metrics: Readonly<Record<string, number>> | null;
}

/** Why a message was rejected; each reason is counted separately in /metrics. */
export const INVALID_REASONS = [
  'payload_too_large',
  'invalid_json',
  'not_an_object',
  'invalid_device_id',
  'device_id_mismatch',
  'invalid_timestamp',
  'timestamp_in_future',
  'invalid_battery_level',
  'invalid_rssi',
  'invalid_response_time',
  'invalid_error_rate',
  'invalid_metrics',
  'too_many_metrics',
  /** NUL or a lone surrogate in a key or string: valid JSON, but PostgreSQL cannot store it. */
  'unstorable_text',
] as const;
export type InvalidReason = (typeof INVALID_REASONS)[number];

export interface TelemetryLimits {
  readonly maxPayloadBytes: number;
  readonly maxMetricKeys: number;
  readonly maxFutureSkewMs: number;
  /** Nested metric objects are flattened to dotted keys down to this depth (MAX_METRIC_DEPTH; default 4). */
  readonly maxMetricDepth?: number;
}

export type DecodeResult =
  | { readonly ok: true; readonly telemetry: Telemetry }
  | { readonly ok: false; readonly reason: InvalidReason; readonly detail: string };

const fail = (reason: InvalidReason, detail: string): DecodeResult => ({ ok: false, reason, detail });

/**
 * Validates one telemetry payload for the device named by its topic. Hand-written rather than zod
 * because it runs once per message on the hot path and must name one reason per rejection; the
 * zod schema `statusBody` in transport/http/ingest-routes.ts states the same rules for the REST API.
 */
export function decodeTelemetry(
  topicDeviceId: string,
  payload: Buffer | string,
  receivedAt: number,
  limits: TelemetryLimits,
  onSkip?: OnSkip,
): DecodeResult {
  if (payload.length > limits.maxPayloadBytes) {
    return fail('payload_too_large', `payload is ${payload.length} bytes, limit ${limits.maxPayloadBytes}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch {
    return fail('invalid_json', 'payload is not valid JSON');
  }
  if (mayHoldUnstorableText(payload)) {
    const at = findUnstorableText(body);
    if (at !== null) return fail('unstorable_text', `${describeTextPath(at)} holds NUL or a lone surrogate, which cannot be stored`);
  }
  return validateTelemetry(topicDeviceId, body, receivedAt, limits, onSkip);
}

/** Validates a parsed body; its text must already be known storable (see `findUnstorableText`). */
export function validateTelemetry(
  topicDeviceId: string,
  body: unknown,
  receivedAt: number,
  limits: TelemetryLimits,
  onSkip?: OnSkip,
): DecodeResult {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return fail('not_an_object', 'payload must be a JSON object');
  }
  const m = body as Record<string, unknown>;
  if (!isDeviceId(topicDeviceId)) return fail('invalid_device_id', 'device id must be 1-128 chars of [A-Za-z0-9._:-]');
  if (m.device_id !== undefined && m.device_id !== topicDeviceId) {
    return fail('device_id_mismatch', "device_id in the payload differs from the topic's");
  }

  let ts = receivedAt;
  const rawTs = m.timestamp;
  if (rawTs !== undefined && rawTs !== null) {
    if (typeof rawTs === 'number') ts = rawTs;
    else if (typeof rawTs === 'string' && ISO_8601.test(rawTs)) ts = parseIsoAsUtc(rawTs);
    else return fail('invalid_timestamp', 'timestamp must be ISO 8601 or epoch milliseconds');
    if (!Number.isFinite(ts) || ts < 0 || !Number.isInteger(ts)) {
      return fail('invalid_timestamp', 'timestamp must be ISO 8601 or epoch milliseconds');
    }
    if (ts > receivedAt + limits.maxFutureSkewMs) {
      return fail('timestamp_in_future', `timestamp is more than ${limits.maxFutureSkewMs / 1000} s in the future`);
    }
  }

  const batteryLevel = optionalNumber(m.battery_level, 0, 100);
  if (batteryLevel === INVALID) return fail('invalid_battery_level', 'battery_level must be a number 0-100');
  const rssi = optionalNumber(m.rssi, -140, 0);
  if (rssi === INVALID) return fail('invalid_rssi', 'rssi must be a number of dBm, -140..0');
  const responseTimeMs = optionalNumber(m.response_time_ms, 0, Number.MAX_SAFE_INTEGER);
  if (responseTimeMs === INVALID) return fail('invalid_response_time', 'response_time_ms must be a number >= 0');
  const errorRate = optionalNumber(m.error_rate, 0, 1);
  if (errorRate === INVALID) return fail('invalid_error_rate', 'error_rate must be a number 0..1');

  let metrics: Record<string, number> | null = null;
  const rawMetrics = m.metrics;
  if (rawMetrics !== undefined && rawMetrics !== null) {
    if (typeof rawMetrics !== 'object' || Array.isArray(rawMetrics)) {
      return fail('invalid_metrics', 'metrics must be an object of finite numbers');
    }
    // A copy with nothing inherited: keys such as __proto__ stay plain data.
    metrics = newReadings();
    let count = 0;
    for (const key in rawMetrics) {
      if (!Object.hasOwn(rawMetrics, key)) continue;
      const value = (rawMetrics as Record<string, unknown>)[key];
      // The common case, a finite number under a fresh plain key, costs what it always did.
      if (typeof value === 'number' && Number.isFinite(value) && key.length !== 0 && key.length <= MAX_METRIC_KEY_LENGTH) {
        if (++count > limits.maxMetricKeys) return tooMany(limits);
        metrics[key] = value;
        continue;
      }
      // Booleans (1/0), nested objects (dotted keys), and skipped values (counted by reason).
      count = addReading(metrics, key, value, 1, count, limits.maxMetricKeys, limits.maxMetricDepth ?? DEFAULT_METRIC_DEPTH, onSkip);
      if (count === TOO_MANY) return tooMany(limits);
    }
  }

  return {
    ok: true,
    telemetry: { deviceId: topicDeviceId, ts, receivedAt, batteryLevel, rssi, responseTimeMs, errorRate, metrics },
  };
}

const tooMany = (limits: TelemetryLimits) => fail('too_many_metrics', `metrics has more than ${limits.maxMetricKeys} readings (flattened)`);

const INVALID = Symbol('invalid');
const HAS_ZONE = /(Z|[+-]\d{2}:?\d{2})$/;

/** ISO 8601 without a zone is read as UTC, never as the hub's local time. */
function parseIsoAsUtc(text: string): number {
  const iso = text.replace(' ', 'T');
  return Date.parse(HAS_ZONE.test(iso) ? iso : `${iso}Z`);
}
const ISO_8601 = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/;

function optionalNumber(value: unknown, min: number, max: number): number | null | typeof INVALID {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) return INVALID;
  return value;
}
