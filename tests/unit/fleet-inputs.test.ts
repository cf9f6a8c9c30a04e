import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { decodeMappedTelemetry } from '../../src/domain/mapped-telemetry.js';
import type { SkipReason } from '../../src/domain/readings.js';
import { decodeTelemetry } from '../../src/domain/telemetry.js';
import { objectId } from '../../src/transport/mqtt-availability.js';
import { parseStatusPayload } from '../../src/transport/mqtt-ingest.js';
import { mqttInputs } from '../../src/transport/mqtt-inputs.js';
import { compileTemplate, matchTemplate, topicsOverlap } from '../../src/transport/topic-templates.js';

const limits = { maxPayloadBytes: 16 * 1024, maxMetricKeys: 64, maxFutureSkewMs: 300_000 };
const now = Date.UTC(2026, 11, 1, 12, 0, 0);

function skipsOf(run: (onSkip: (r: SkipReason) => void) => unknown): Record<string, number> {
  const skips: Record<string, number> = {};
  run((r) => (skips[r] = (skips[r] ?? 0) + 1));
  return skips;
}

describe('tolerant readings in the Vigil payload', () => {
  it('stores booleans as 1/0, flattens nested objects and skips (and counts) the rest without dropping the message', () => {
    let result: ReturnType<typeof decodeTelemetry> | undefined;
    const skips = skipsOf((onSkip) => {
      result = decodeTelemetry('d1', JSON.stringify({ battery_level: 80, metrics: { occupancy: true, door: false, mode: 'auto', gone: null, list: [{ id: 1 }], env: { t: 21.5, inner: { h: 40 } }, ['x'.repeat(65)]: 1 } }), now, limits, onSkip);
    });
    expect(result).toMatchObject({ ok: true, telemetry: { batteryLevel: 80 } });
    if (!result?.ok) throw new Error('rejected');
    expect({ ...result.telemetry.metrics }).toEqual({ occupancy: 1, door: 0, 'env.t': 21.5, 'env.inner.h': 40 });
    expect(skips).toEqual({ string: 1, null: 1, array: 1, bad_key: 1 });
  });

  it('bounds depth (skipped, counted) and the number of flattened readings (rejected)', () => {
    const skips = skipsOf((onSkip) => {
      const r = decodeTelemetry('d1', JSON.stringify({ metrics: { a: { b: { c: 1 } }, d: 2 } }), now, { ...limits, maxMetricDepth: 2 }, onSkip);
      expect(r.ok && { ...r.telemetry.metrics }).toEqual({ d: 2 });
    });
    expect(skips).toEqual({ too_deep: 1 });
    const nested = { metrics: { a: Object.fromEntries([...Array(65).keys()].map((k) => [`m${k}`, k])) } };
    expect(decodeTelemetry('d1', JSON.stringify(nested), now, limits)).toMatchObject({ ok: false, reason: 'too_many_metrics' });
  });
});

describe('payloads in a fleet’s own shape', () => {
  const z2m = mqttInputs(loadConfig({ MQTT_PRESET: 'zigbee2mqtt' }));
  const tasmota = mqttInputs(loadConfig({ MQTT_PRESET: 'tasmota' }));
  const mapped = (body: unknown, fieldMap: ReadonlyMap<string, string>) => decodeMappedTelemetry('lamp', Buffer.from(JSON.stringify(body)), now, limits, fieldMap);

  it('reads a Zigbee2MQTT state message: battery → battery_level, linkquality (LQI, not dBm) kept as a metric', () => {
    const r = mapped({ battery: 97, linkquality: 120, occupancy: true, temperature: 21.3, voltage: 3000, update: { state: 'idle' }, last_seen: '2026-12-01T11:59:59Z' }, z2m.fieldMap);
    expect(r).toMatchObject({ ok: true, telemetry: { batteryLevel: 97, rssi: null, ts: now } });
    expect(r.ok && { ...r.telemetry.metrics }).toEqual({ linkquality: 120, occupancy: 1, temperature: 21.3, voltage: 3000 });
  });

  it('reads Tasmota SENSOR (nested sensors, local Time not a timestamp) and STATE (Wifi.Signal dBm → rssi)', () => {
    const sensor = mapped({ Time: '2026-12-01T13:00:00', AM2301: { Temperature: 21.3, Humidity: 40 }, TempUnit: 'C' }, tasmota.fieldMap);
    expect(sensor).toMatchObject({ ok: true, telemetry: { ts: now } });
    expect(sensor.ok && { ...sensor.telemetry.metrics }).toEqual({ 'AM2301.Temperature': 21.3, 'AM2301.Humidity': 40 });
    const state = mapped({ Time: '2026-12-01T13:00:00', Uptime: '0T00:10:45', UptimeSec: 645, POWER: 'ON', Wifi: { AP: 1, SSId: 'home', RSSI: 80, Signal: -60 } }, tasmota.fieldMap);
    expect(state).toMatchObject({ ok: true, telemetry: { rssi: -60 } });
    expect(state.ok && { ...state.telemetry.metrics }).toEqual({ UptimeSec: 645, 'Wifi.AP': 1, 'Wifi.RSSI': 80 });
  });

  it('skips (and counts) a mapped field its Vigil field refuses, keeping the rest of the message', () => {
    let r: ReturnType<typeof mapped> | undefined;
    const skips = skipsOf((onSkip) => {
      r = decodeMappedTelemetry('lamp', Buffer.from(JSON.stringify({ battery: 101, linkquality: 90, contact: false, Wifi: { Signal: 12 } })), now, limits, new Map([...z2m.fieldMap, ...tasmota.fieldMap]), onSkip);
    });
    expect(r).toMatchObject({ ok: true, telemetry: { batteryLevel: null, rssi: null } });
    expect(r?.ok && { ...r.telemetry.metrics }).toEqual({ linkquality: 90, contact: 0 });
    expect(skips).toEqual({ out_of_range: 2 });
    // A mapped timestamp that is not one (or in the future) is skipped too: the receipt time counts.
    const ts = skipsOf((onSkip) => {
      const t = decodeMappedTelemetry('lamp', Buffer.from(JSON.stringify({ seen: now + 3_600_000, battery: 50 })), now, limits, new Map([['seen', 'timestamp']]), onSkip);
      expect(t).toMatchObject({ ok: true, telemetry: { ts: now, batteryLevel: null, metrics: { battery: 50 } } });
    });
    expect(ts).toEqual({ out_of_range: 1 });
    // The Vigil payload's own fields are still validated as documented: the message is refused.
    expect(decodeTelemetry('lamp', JSON.stringify({ battery_level: 101 }), now, limits)).toMatchObject({ ok: false, reason: 'invalid_battery_level' });
  });

  it('flattens Tasmota multi-channel ENERGY arrays to indexed keys, counted within MAX_METRIC_KEYS', () => {
    const energy = { Time: '2026-12-01T13:00:00', ENERGY: { TotalStartTime: '2026-01-01T00:00:00', Total: [1.5, 2.25], Yesterday: [0.1, 0.2], Today: [0.3, 0.4], Power: [12, 0], Voltage: [230, 231], Current: [0.05, 0], Factor: [0.9, 0] } };
    let r: ReturnType<typeof mapped> | undefined;
    const skips = skipsOf((onSkip) => {
      r = decodeMappedTelemetry('plug', Buffer.from(JSON.stringify(energy)), now, limits, tasmota.fieldMap, onSkip);
    });
    expect(r?.ok && { ...r.telemetry.metrics }).toMatchObject({ 'ENERGY.Voltage.0': 230, 'ENERGY.Voltage.1': 231, 'ENERGY.Power.0': 12, 'ENERGY.Total.1': 2.25 });
    expect(r?.ok && Object.keys(r.telemetry.metrics!).length).toBe(14);
    expect(skips).toEqual({ string: 1 });
    // Arrays of anything but numbers stay skipped whole; too many channels reject like any flattening.
    const others = skipsOf((onSkip) => {
      const t = decodeTelemetry('d1', JSON.stringify({ metrics: { list: [{ a: 1 }], names: ['a'], empty: [], mixed: [1, 'x'], flags: [true, false] } }), now, limits, onSkip);
      expect(t.ok && { ...t.telemetry.metrics }).toEqual({ 'flags.0': 1, 'flags.1': 0 });
    });
    expect(others).toEqual({ array: 4 });
    expect(decodeTelemetry('d1', JSON.stringify({ metrics: { v: [...Array(65).keys()] } }), now, limits)).toMatchObject({ ok: false, reason: 'too_many_metrics' });
    const deep = decodeTelemetry('d1', JSON.stringify({ metrics: { a: { b: [1] }, c: 1 } }), now, { ...limits, maxMetricDepth: 2 });
    expect(deep.ok && { ...deep.telemetry.metrics }).toEqual({ c: 1 });
  });

  it('refuses what is not an object', () => {
    expect(decodeMappedTelemetry('lamp', Buffer.from('"ON"'), now, limits, z2m.fieldMap)).toMatchObject({ ok: false, reason: 'not_an_object' });
    expect(mapped({ t: 1 }, new Map([['t', 'temperature']]))).toMatchObject({ ok: true, telemetry: { metrics: { temperature: 1 } } });
  });
});

describe('availability words', () => {
  it.each([
    ['online', true], ['offline', false], ['Online', true], ['Offline', false], ['OFFLINE', false],
    ['{"online":false}', false], ['{"state":"offline"}', false], ['{"state":"online"}', true],
    ['{"state":"ON"}', null], ['maybe', null], ['', null],
  ])('%s → %s', (text, expected) => {
    expect(parseStatusPayload(Buffer.from(text))).toBe(expected);
  });
});

describe('topic templates', () => {
  const templates = mqttInputs(loadConfig({ MQTT_PRESET: 'zigbee2mqtt,tasmota', MQTT_HEARTBEAT_TOPICS: 'site/{id}/ping' })).templates;

  it('captures the {id} level and nothing across levels', () => {
    expect(matchTemplate(templates, 'zigbee2mqtt/lamp')).toEqual({ kind: 'telemetry', deviceId: 'lamp', hold: false });
    expect(matchTemplate(templates, 'zigbee2mqtt/lamp/availability')).toEqual({ kind: 'availability', deviceId: 'lamp', hold: true });
    expect(matchTemplate(templates, 'zigbee2mqtt/bridge/state')).toBeNull();
    expect(matchTemplate(templates, 'tele/plug1/SENSOR')).toEqual({ kind: 'telemetry', deviceId: 'plug1', hold: false });
    expect(matchTemplate(templates, 'tele/plug1/LWT')).toEqual({ kind: 'availability', deviceId: 'plug1', hold: false });
    expect(matchTemplate(templates, 'site/x/ping')).toEqual({ kind: 'heartbeat', deviceId: 'x', hold: false });
    expect(matchTemplate(templates, 'tele//SENSOR')).toBeNull();
    expect(compileTemplate('telemetry', 'a/{id}/b').filter).toBe('a/+/b');
  });

  it('holds devices online on the inputs MQTT_AVAILABILITY_HOLD names (by default Zigbee2MQTT’s availability, not Tasmota’s LWT)', () => {
    const holding = (env: Record<string, string>) => mqttInputs(loadConfig(env)).templates.filter((t) => t.hold).map((t) => t.template);
    expect(holding({ MQTT_PRESET: 'zigbee2mqtt,tasmota' })).toEqual(['zigbee2mqtt/{id}/availability']);
    expect(holding({ MQTT_PRESET: 'zigbee2mqtt,tasmota', MQTT_AVAILABILITY_HOLD: 'none' })).toEqual([]);
    expect(holding({ MQTT_PRESET: 'zigbee2mqtt,tasmota', MQTT_AVAILABILITY_HOLD: 'tele/{id}/LWT' })).toEqual(['tele/{id}/LWT']);
    expect(holding({ MQTT_AVAILABILITY_TOPICS: 'z2m/{id}/availability', MQTT_AVAILABILITY_HOLD: 'z2m/{id}/availability' })).toEqual(['z2m/{id}/availability']);
    expect(() => loadConfig({ MQTT_PRESET: 'zigbee2mqtt', MQTT_AVAILABILITY_HOLD: 'zigbee2mqtt/{id}' })).toThrow(/not an availability template/);
  });

  it('refuses bad templates, too many, and any input that would read the hub’s own publications', () => {
    expect(() => loadConfig({ MQTT_TELEMETRY_TOPICS: 'a/b' })).toThrow(/exactly one \{id\}/);
    expect(() => loadConfig({ MQTT_TELEMETRY_TOPICS: 'a/#/{id}' })).toThrow(/literal/);
    expect(() => loadConfig({ MQTT_PRESET: 'nope' })).toThrow(/unknown preset/);
    expect(() => loadConfig({ MQTT_TELEMETRY_TOPICS: 'a/{id},b/{id},c/{id}', MAX_TOPIC_TEMPLATES: '2' })).toThrow(/MAX_TOPIC_TEMPLATES/);
    expect(() => loadConfig({ MQTT_AVAILABILITY_TOPICS: 'devices/{id}/availability' })).toThrow(/own publications/);
    expect(() => loadConfig({ MQTT_TELEMETRY_TOPICS: 'vigil/{id}/state' })).toThrow(/own publications/);
    expect(() => loadConfig({ HA_DISCOVERY: 'true', MQTT_TELEMETRY_TOPICS: 'homeassistant/{id}/x' })).toThrow(/own publications/);
    expect(() => loadConfig({ MQTT_FIELD_MAP: 'battery' })).toThrow(/source=target/);
    expect(topicsOverlap('devices/{id}/availability', 'devices/+/telemetry')).toBe(false);
    expect(topicsOverlap('homeassistant/#', 'homeassistant/{id}')).toBe(true);
  });

  it('gives Home Assistant object ids that stay distinct', () => {
    expect(objectId('lamp-1')).toBe('lamp-1');
    expect(objectId('a.b')).not.toBe(objectId('a_b'));
    expect(objectId('a.b')).toMatch(/^a_b_[0-9a-z]+$/);
  });
});
