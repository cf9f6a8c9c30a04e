import { describe, expect, it } from 'vitest';
import { findUnstorableText, mayHoldUnstorableText } from '../../src/domain/storable-text.js';
import { decodeTelemetry, type DecodeResult } from '../../src/domain/telemetry.js';
import { parseCommandAck } from '../../src/transport/mqtt-ingest.js';

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
    ['invalid_metrics', { metrics: 'hot' }],
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

  it('keeps __proto__ as plain data, and a metrics object inherits nothing', () => {
    const r = decode('{"metrics":{"__proto__":1,"constructor":2}}');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const proto = Object.getPrototypeOf(r.telemetry.metrics) as object;
    expect([Object.getPrototypeOf(proto), Reflect.ownKeys(proto), Object.isFrozen(proto)]).toEqual([null, [], true]);
    expect(r.telemetry.metrics?.['__proto__']).toBe(1);
    expect(r.telemetry.metrics?.['constructor']).toBe(2);
    const other = decode('{"metrics":{"a":1}}');
    expect(other.ok && [other.telemetry.metrics?.['constructor'], other.telemetry.metrics?.['toString'], other.telemetry.metrics?.['__proto__']]).toEqual([undefined, undefined, undefined]);
    expect(({} as Record<string, unknown>).constructor).toBe(Object);
  });
});

describe('text PostgreSQL cannot store (NUL, lone surrogates) is refused at ingest', () => {
  const ack = (text: string) => parseCommandAck(Buffer.from(text));

  it.each([
    ['a NUL metric key', '{"metrics":{"a\\u0000b":1}}', 'metrics.a\\u0000b'],
    ['a lone high surrogate key', '{"metrics":{"\\ud800":1}}', 'metrics.\\ud800'],
    ['a lone low surrogate (upper-case escape)', '{"metrics":{"x\\uDC00":1}}', 'metrics.x\\udc00'],
    ['NUL in an ignored string field', '{"note":"a\\u0000"}', 'note'],
    ['NUL deep in an array', '{"extra":[1,{"k":["\\u0000"]}]}', 'extra.[1].k.[0]'],
  ])('%s', (_name, payload, where) => {
    const r = decodeTelemetry('d1', Buffer.from(payload), now, limits);
    expect(r).toMatchObject({ ok: false, reason: 'unstorable_text' });
    expect(r.ok || r.detail).toContain(where);
  });

  it('keeps storable escapes: a surrogate pair, \\u00e9, an escaped backslash before u0000', () => {
    expect(decode('{"metrics":{"\\ud83d\\ude00":1,"caf\\u00e9":2}}')).toMatchObject({ ok: true, telemetry: { metrics: { '😀': 1, café: 2 } } });
    expect(decode('{"note":"\\\\u0000"}')).toMatchObject({ ok: true });
  });

  it('walks the body only when the raw text holds a \\u escape (raw NUL is not JSON; bad UTF-8 becomes U+FFFD)', () => {
    expect(mayHoldUnstorableText(Buffer.from('{"metrics":{"temperature":21.5}}'))).toBe(false);
    expect(mayHoldUnstorableText(Buffer.from('{"a":"\\u0000"}'))).toBe(true);
    expect(decodeTelemetry('d1', Buffer.from([0x7b, 0x22, 0x61, 0x00, 0x22, 0x3a, 0x31, 0x7d]), now, limits)).toMatchObject({ reason: 'invalid_json' });
    expect(decodeTelemetry('d1', Buffer.from([...Buffer.from('{"metrics":{"'), 0xed, 0xa0, 0x80, ...Buffer.from('":1}}')]), now, limits)).toMatchObject({ ok: true });
    expect(mayHoldUnstorableText('{"a":"\ud800"}')).toBe(true);
  });

  it('finds the first unstorable key or string, or null', () => {
    expect(findUnstorableText({ a: [1, 'ok', { b: 'fine' }], 'c😀': null })).toBeNull();
    expect(findUnstorableText({ a: { 'k\u0000': 1 } })).toEqual(['a', 'k\u0000']);
    expect(findUnstorableText(['x', 'y\udfff'])).toEqual([1]);
    let deep: unknown = '\u0000';
    for (let i = 0; i < 50_000; i++) deep = [deep];
    const started = performance.now();
    expect(findUnstorableText(deep)).toHaveLength(50_000);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it('command acks: a result holding NUL or a lone surrogate is unstorable_text; a bad shape invalid_command_ack', () => {
    expect(ack('{"command_id":"c1","status":"succeeded","result":{"out":"a\\u0000"}}')).toMatchObject({ ok: false, reason: 'unstorable_text' });
    expect(ack('{"command_id":"c1","status":"failed","result":["\\ud800"]}')).toMatchObject({ ok: false, reason: 'unstorable_text' });
    expect(ack('{"command_id":"c1","status":"succeeded","result":{"out":"caf\\u00e9"}}')).toMatchObject({ ok: true, result: { out: 'café' } });
    expect(ack('{"command_id":"c1","status":"done"}')).toMatchObject({ ok: false, reason: 'invalid_command_ack' });
    expect(ack('null')).toMatchObject({ ok: false, reason: 'invalid_command_ack' });
  });
});
