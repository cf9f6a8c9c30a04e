import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { ScoredHealth } from '../../src/domain/alert.js';
import { blankState, type DeviceState } from '../../src/domain/device-state.js';
import type { Telemetry } from '../../src/domain/telemetry.js';
import { Faults } from '../../src/errors/boundary.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { MqttAvailability } from '../../src/transport/mqtt-availability.js';
import { haNodeId } from '../../src/transport/mqtt-inputs.js';

/** What the hub publishes for Home Assistant, with a recording publisher (no broker: the logic only). */

const T0 = Date.UTC(2026, 11, 1);
const reading = (deviceId: string, battery: number | null, rssi: number | null): Telemetry => ({
  deviceId, ts: T0, receivedAt: T0, batteryLevel: battery, rssi, responseTimeMs: null, errorRate: null, metrics: null,
});

const scored = (score: number) => ({ score }) as unknown as ScoredHealth;

const made: MqttAvailability[] = [];
afterEach(() => {
  for (const a of made.splice(0)) a.stop();
});

function availability(format: 'text' | 'json' = 'text', nodeId = 'vigil') {
  const sent: { topic: string; payload: string }[] = [];
  const metrics = createMetrics();
  const a = new MqttAvailability({
    publish: async (topic, payload) => void sent.push({ topic, payload }),
    topicPrefix: 'devices',
    format,
    perDevice: true,
    hubStateTopic: 'vigil/hub/state',
    homeAssistant: { prefix: 'homeassistant', stateIntervalMs: 3_600_000, nodeId },
    metrics,
    faults: new Faults(createLogger('silent'), metrics),
  });
  made.push(a);
  /** A reading reaching the observer as the device engine hands it: the newest one, with battery or rssi. */
  const ingest = (state: DeviceState, t: Telemetry) => {
    state.telemetry = t;
    if (t.batteryLevel !== null || t.rssi !== null) a.readingsSeen?.(state, t);
  };
  const configs = () => sent.filter((m) => m.topic.endsWith('/config')).map((m) => m.topic);
  const states = (id: string) => sent.filter((m) => m.topic === `devices/${id}/health`).map((m) => JSON.parse(m.payload) as Record<string, unknown>);
  return { a, sent, ingest, configs, states };
}

const online = (state: DeviceState) => {
  state.status = 'online';
  return { deviceId: state.id, status: 'online' as const, previous: null, reason: 'telemetry' as const, lastSeen: T0, at: T0 };
};

describe('Home Assistant state and discovery', () => {
  it('publishes the state when the battery or rssi changes, not only when the score moves (throttled to one per flush)', () => {
    const { a, ingest, states } = availability();
    const d = blankState('d1');
    a.statusAnnounced(d, online(d));
    ingest(d, reading('d1', 80, -60));
    a.healthScored(d, scored(90));
    a.flushStates();
    expect(states('d1')).toEqual([{ status: 'online', score: 90, battery: 80, rssi: -60 }]);
    ingest(d, reading('d1', 79, null));
    ingest(d, reading('d1', 78, null));
    a.healthScored(d, scored(90)); // the same score: no change of its own
    a.flushStates();
    // The last known rssi stays in the state (a message without it, such as Tasmota's SENSOR, does not blank it).
    expect(states('d1').at(-1)).toEqual({ status: 'online', score: 90, battery: 78, rssi: -60 });
    expect(states('d1')).toHaveLength(2);
    ingest(d, reading('d1', 78, -60));
    a.flushStates();
    expect(states('d1')).toHaveLength(2); // nothing changed: nothing published
  });

  it('publishes the battery and RSSI entities only once the device has sent one, and templates that tolerate absence', () => {
    const { a, ingest, configs, sent } = availability();
    const d = blankState('plain');
    a.statusAnnounced(d, online(d));
    a.healthScored(d, scored(100));
    expect(configs()).toEqual(['homeassistant/binary_sensor/vigil_plain/connectivity/config', 'homeassistant/sensor/vigil_plain/score/config']);
    ingest(d, reading('plain', null, -71));
    expect(configs().slice(2)).toEqual(['homeassistant/sensor/vigil_plain/rssi/config']);
    ingest(d, reading('plain', 55, -71));
    expect(configs().slice(3)).toEqual(['homeassistant/sensor/vigil_plain/battery/config']);
    ingest(d, reading('plain', 54, -70));
    expect(configs()).toHaveLength(4); // each config once
    const battery = JSON.parse(sent.find((m) => m.topic.endsWith('/battery/config'))!.payload) as Record<string, unknown>;
    expect(battery.value_template).toBe('{{ value_json.battery | default(None) }}');
  });

  it('with AVAILABILITY_FORMAT=json, every availability the configs read carries a value_template for {"state":…}', () => {
    const { a, ingest, sent } = availability('json');
    const d = blankState('j1');
    a.statusAnnounced(d, online(d));
    ingest(d, reading('j1', 50, -50));
    expect(sent.find((m) => m.topic === 'devices/j1/availability')?.payload).toBe('{"state":"online"}');
    const configs = sent.filter((m) => m.topic.endsWith('/config')).map((m) => JSON.parse(m.payload) as { value_template?: string; availability?: { topic: string; value_template?: string }[] });
    expect(configs).toHaveLength(4);
    const connectivity = configs[0]!;
    expect(connectivity.value_template).toBe('{{ value_json.state }}');
    for (const config of configs) {
      expect(config.availability!.length).toBeGreaterThan(0);
      for (const entry of config.availability!) expect(entry.value_template, entry.topic).toBe('{{ value_json.state }}');
    }
  });

  it('names entities by HA_NODE_ID (derived from MQTT_TOPIC_PREFIX by default) so two hubs on one broker stay apart', () => {
    expect(haNodeId(loadConfig({}))).toBe('vigil');
    expect(haNodeId(loadConfig({ MQTT_TOPIC_PREFIX: 'site-b/devices' }))).toMatch(/^vigil_site-b_devices_[0-9a-z]+$/);
    expect(haNodeId(loadConfig({ MQTT_TOPIC_PREFIX: 'site-b/devices', HA_NODE_ID: 'site_b' }))).toBe('site_b');
    expect(() => loadConfig({ HA_NODE_ID: 'a/b' })).toThrow(/HA_NODE_ID/);
    const { a, sent } = availability('text', 'site_b');
    const d = blankState('d1');
    a.statusAnnounced(d, online(d));
    const connectivity = sent.find((m) => m.topic.endsWith('/connectivity/config'))!;
    expect(connectivity.topic).toBe('homeassistant/binary_sensor/site_b_d1/connectivity/config');
    expect(JSON.parse(connectivity.payload)).toMatchObject({ unique_id: 'site_b_d1_connectivity', device: { identifiers: ['site_b_d1'] } });
  });

  it('publishes a device’s configs again after an ownership change (its new owner does)', () => {
    const { a, configs } = availability();
    const d = blankState('moved');
    a.statusAnnounced(d, online(d));
    expect(configs()).toHaveLength(2);
    a.statusAnnounced(d, online(d));
    expect(configs()).toHaveLength(2);
    a.ownershipChanged();
    a.statusAnnounced(d, online(d));
    expect(configs()).toHaveLength(4);
  });
});
