import { describe, expect, it } from 'vitest';
import { decodeTelemetry, type DecodeResult } from '../../src/domain/telemetry.js';

const limits = { maxPayloadBytes: 16 * 1024, maxMetricKeys: 64, maxFutureSkewMs: 300_000 };
const now = Date.UTC(2026, 10, 24, 12, 0, 0);
const decode = (body: unknown, deviceId = 'd1'): DecodeResult =>
  decodeTelemetry(deviceId, typeof body === 'string' ? body : JSON.stringify(body), now, limits);
const reason = (r: DecodeResult) => (r.ok ? 'ok' : r.reason);

describe('telemetry decoder', () => {
  it('accepts a full message', () => {
    const r = decode({ device_id: 'd1', timestamp: '2026-11-24T11:59:00Z', battery_level: 80, rssi: -70, response_time_ms: 12, error_rate: 0.1, metrics: { t: 1.5 } });
    expect(r).toMatchObject({ ok: true, telemetry: { deviceId: 'd1', ts: now - 60_000, batteryLevel: 80, rssi: -70, responseTimeMs: 12, errorRate: 0.1 } });
  });

  it('defaults the timestamp to receipt time and reads zone-less ISO as UTC', () => {
    expect(decode({})).toMatchObject({ ok: true, telemetry: { ts: now, batteryLevel: null, metrics: null } });
    expect(decode({ timestamp: '2026-11-24T11:00:00' })).toMatchObject({ telemetry: { ts: now - 3600_000 } });
    expect(decode({ timestamp: now - 5 })).toMatchObject({ telemetry: { ts: now - 5 } });
  });

  it.each([
    ['invalid_json', '{"a":'],
    ['not_an_object', '[]'],
    ['not_an_object', 'null'],
    ['device_id_mismatch', { device_id: 'd2' }],
    ['invalid_timestamp', { timestamp: 'soon' }],
    ['invalid_timestamp', { timestamp: -1 }],
    ['invalid_timestamp', { timestamp: 1.5 }],
    ['timestamp_in_future', { timestamp: now + 301_000 }],
    ['invalid_battery_level', { battery_level: -0.1 }],
    ['invalid_battery_level', { battery_level: '50' }],
    ['invalid_rssi', { rssi: -141 }],
    ['invalid_response_time', { response_time_ms: -5 }],
    ['invalid_error_rate', { error_rate: 2 }],
    ['invalid_metrics', { metrics: [1] }],
    ['invalid_metrics', { metrics: { a: null } }],
    ['invalid_metrics', { metrics: { a: '1' } }],
  ])('rejects %s: %j', (expected, body) => {
    expect(reason(decode(body))).toBe(expected);
  });

  it('rejects bad device ids, huge payloads and too many metrics', () => {
    expect(reason(decode({}, 'a/b'))).toBe('invalid_device_id');
    expect(reason(decode({}, 'x'.repeat(129)))).toBe('invalid_device_id');
    expect(reason(decode({ pad: 'x'.repeat(17 * 1024) }))).toBe('payload_too_large');
    const many = Object.fromEntries([...Array(65).keys()].map((k) => [`m${k}`, k]));
    expect(reason(decode({ metrics: many }))).toBe('too_many_metrics');
  });

  it('keeps __proto__ as plain data', () => {
    const r = decode('{"metrics":{"__proto__":1,"constructor":2}}');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Object.getPrototypeOf(r.telemetry.metrics)).toBeNull();
    expect(r.telemetry.metrics?.['__proto__']).toBe(1);
    expect(({} as Record<string, unknown>).constructor).toBe(Object);
  });
});
