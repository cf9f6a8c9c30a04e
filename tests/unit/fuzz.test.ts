import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEVICE_ID_PATTERN } from '../../src/domain/device-id.js';
import { findUnstorableText, isStorableText } from '../../src/domain/storable-text.js';
import { decodeTelemetry, INVALID_REASONS } from '../../src/domain/telemetry.js';
import { decodeClientMessage } from '../../src/hub/protocol.js';
import { parseCommandAck, parseStatusPayload } from '../../src/transport/mqtt-ingest.js';
import { statusBody } from '../../src/transport/http/ingest-routes.js';
import { batchBody, deviceSettingsBody } from '../../src/transport/http/status-routes.js';

const limits = { maxPayloadBytes: 16 * 1024, maxMetricKeys: 64, maxFutureSkewMs: 300_000 };
const NOW = Date.UTC(2026, 10, 24);

/** Adversarial JSON-ish text: valid JSON of any shape, its truncations, and hostile fragments. */
const hostileText = fc.oneof(
  fc.json({ depthSize: 'medium' }),
  fc.json().map((j) => j.slice(0, Math.max(0, j.length - 1))),
  fc.constantFrom(
    '{"__proto__":{"polluted":1}}',
    '{"metrics":{"__proto__":1,"constructor":{"prototype":1}}}',
    '{"battery_level":NaN}',
    '{"battery_level":Infinity}',
    '{"rssi":-1e400}',
    '{"timestamp":1e309}',
    '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
    '\u0000\u0001\uffff',
    '{"metrics":' + '{"a":'.repeat(500) + '1' + '}'.repeat(500) + '}',
  ),
  fc.string({ unit: 'binary' }),
);

const telemetryLike = fc.record(
  {
    device_id: fc.oneof(fc.constant('d1'), fc.string()),
    timestamp: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
    battery_level: fc.oneof(fc.double(), fc.integer(), fc.string(), fc.constant(null)),
    rssi: fc.oneof(fc.double(), fc.integer({ min: -200, max: 10 })),
    response_time_ms: fc.double(),
    error_rate: fc.double(),
    metrics: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.double(), fc.string(), fc.constant(null))), fc.anything()),
  },
  { requiredKeys: [] },
);

/** Strings of any UTF-16 code units: NUL, lone surrogates and pairs included. */
const codeUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 8 });

describe('fuzz: unstorable text never reaches storage', () => {
  it('accepted telemetry and command acks hold no NUL or lone surrogate, from a Buffer as from MQTT', () => {
    fc.assert(
      fc.property(fc.dictionary(codeUnits, fc.double({ noNaN: true, noDefaultInfinity: true }), { maxKeys: 4 }), codeUnits, (metrics, note) => {
        const payload = Buffer.from(JSON.stringify({ metrics, note }));
        const r = decodeTelemetry('d1', payload, NOW, limits);
        const unstorable = findUnstorableText({ metrics, note }) !== null;
        if (unstorable) expect(r).toMatchObject({ ok: false, reason: 'unstorable_text' });
        if (r.ok && r.telemetry.metrics !== null) expect(Object.keys(r.telemetry.metrics).every(isStorableText)).toBe(true);
        const ack = parseCommandAck(Buffer.from(JSON.stringify({ command_id: 'c1', status: 'succeeded', result: { [note]: note } })));
        expect(ack.ok).toBe(isStorableText(note));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('fuzz: the telemetry decoder', () => {
  it('never throws, and whatever it accepts is within the documented ranges', () => {
    fc.assert(
      fc.property(fc.oneof(hostileText, telemetryLike.map((o) => JSON.stringify(o))), (text) => {
        const r = decodeTelemetry('d1', text, NOW, limits);
        if (!r.ok) {
          expect(INVALID_REASONS).toContain(r.reason);
          return;
        }
        const t = r.telemetry;
        expect(Number.isInteger(t.ts) && t.ts >= 0 && t.ts <= NOW + limits.maxFutureSkewMs).toBe(true);
        if (t.batteryLevel !== null) expect(t.batteryLevel >= 0 && t.batteryLevel <= 100).toBe(true);
        if (t.rssi !== null) expect(t.rssi >= -140 && t.rssi <= 0).toBe(true);
        if (t.errorRate !== null) expect(t.errorRate >= 0 && t.errorRate <= 1).toBe(true);
        if (t.responseTimeMs !== null) expect(t.responseTimeMs >= 0).toBe(true);
        if (t.metrics !== null) {
          expect(Object.getPrototypeOf(Object.getPrototypeOf(t.metrics) as object)).toBeNull(); // inherits nothing
          for (const v of Object.values(t.metrics)) expect(Number.isFinite(v)).toBe(true);
          expect(Object.keys(t.metrics).length).toBeLessThanOrEqual(limits.maxMetricKeys);
        }
        expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
      }),
      { numRuns: 3000 },
    );
  });

  it('rejects any topic device id outside the pattern', () => {
    fc.assert(
      fc.property(fc.string(), (id) => {
        const r = decodeTelemetry(id, '{}', NOW, limits);
        expect(r.ok).toBe(DEVICE_ID_PATTERN.test(id));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('fuzz: the WebSocket protocol decoder', () => {
  it('never throws and answers every bad frame with a coded error', () => {
    const frames = fc.oneof(
      hostileText,
      fc.record({ type: fc.oneof(fc.constantFrom('subscribe_device', 'unsubscribe_device', 'ack_alert', 'auth', 'ping'), fc.string()), device_id: fc.anything(), id: fc.anything(), alert_id: fc.anything(), token: fc.anything() }).map((o) =>
        JSON.stringify(o),
      ),
    );
    fc.assert(
      fc.property(frames, (text) => {
        const r = decodeClientMessage(text, 1024);
        if (r.ok) {
          if ('deviceId' in r.message) expect(DEVICE_ID_PATTERN.test(r.message.deviceId)).toBe(true);
          const id = r.message.id;
          expect(id === null || typeof id === 'number' || (typeof id === 'string' && id.length <= 64)).toBe(true);
        } else expect(typeof r.error.code).toBe('string');
      }),
      { numRuns: 3000 },
    );
  });
});

describe('fuzz: MQTT side-channel payloads and REST validators', () => {
  it('status and command-ack payloads never throw', () => {
    fc.assert(
      fc.property(hostileText, (text) => {
        const status = parseStatusPayload(Buffer.from(text));
        expect(status === null || typeof status === 'boolean').toBe(true);
        const ack = parseCommandAck(Buffer.from(text));
        if (ack.ok) expect(['received', 'succeeded', 'failed']).toContain(ack.status);
        else expect(['invalid_command_ack', 'unstorable_text']).toContain(ack.reason);
      }),
      { numRuns: 2000 },
    );
  });

  it('REST body schemas never throw and never accept a bad device id or out-of-range reading', () => {
    fc.assert(
      fc.property(fc.oneof(telemetryLike, fc.anything()), (body) => {
        const r = statusBody.safeParse(body);
        if (r.success) {
          expect(DEVICE_ID_PATTERN.test(r.data.device_id)).toBe(true);
          if (r.data.battery_level !== undefined) expect(r.data.battery_level <= 100 && r.data.battery_level >= 0).toBe(true);
        }
        batchBody.safeParse(body);
        deviceSettingsBody.safeParse(body);
      }),
      { numRuns: 2000 },
    );
  });
});
