import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { spawnHub } from '../helpers/hub-process.js';
import { httpUrl, startHubWithEnv, startTestHub, testHubEnv } from '../helpers/hub.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { letTimePass } from '../helpers/wait.js';
import { haNodeId } from '../../src/transport/mqtt-inputs.js';

/** A real MQTT subscriber that records every message (retained flag included) per topic. */
async function subscriber(url: string, filters: string[], options: IClientOptions = {}) {
  const client = await connectAsync(url, { clientId: `sub-${randomSuffix()}`, clean: true, reconnectPeriod: 0, ...options });
  const seen: { topic: string; payload: string; retain: boolean; at: number }[] = [];
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain, at: Date.now() }));
  await client.subscribeAsync(filters, { qos: 1 });
  return {
    client,
    seen,
    last: (topic: string) => seen.filter((m) => m.topic === topic).at(-1),
    async until(topic: string, payload: string, timeoutMs = 10_000) {
      return poll(() => seen.find((m) => m.topic === topic && m.payload === payload), timeoutMs, `${topic} = ${JSON.stringify(payload)}; seen ${JSON.stringify(seen.slice(-5))}`);
    },
  };
}

async function poll<T>(probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The retained message a fresh subscriber gets for `topic` (or null when none is retained). */
async function retained(url: string, topic: string): Promise<string | null> {
  const sub = await subscriber(url, [topic]);
  try {
    const got = await poll(() => sub.seen.find((m) => m.retain), 1500, 'retained').catch(() => null);
    return got === null ? null : got.payload;
  } finally {
    await sub.client.endAsync();
  }
}

const clients: MqttClient[] = [];
const hubs: RunningHub[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync()));
  await Promise.all(hubs.map((h) => h.stop()));
});

async function device(url: string, options: IClientOptions = {}) {
  const client = await connectAsync(url, { clientId: `dev-${randomSuffix()}`, clean: true, reconnectPeriod: 0, ...options });
  clients.push(client);
  return client;
}

describe('retained availability per device (real Mosquitto)', () => {
  it('is online after the first message, offline within a second of the timeout, and a boolean reading is stored', async () => {
    const hub = await startTestHub('services', { OFFLINE_TIMEOUT_S: '1.5', PRESENCE_BACKLOG_WAIT_S: '0' });
    hubs.push(hub);
    const prefix = hub.config.MQTT_TOPIC_PREFIX;
    const id = `d-${randomSuffix()}`;
    const topic = `${prefix}/${id}/availability`;
    const sub = await subscriber(SERVICES.mqttUrl, [topic]);
    clients.push(sub.client);
    const dev = await device(SERVICES.mqttUrl);
    await dev.publishAsync(`${prefix}/${id}/telemetry`, JSON.stringify({ battery_level: 80, metrics: { occupancy: true, mode: 'eco', temperature: 21.5 } }), { qos: 1 });
    const sentAt = Date.now();
    await sub.until(topic, 'online');
    expect(await retained(SERVICES.mqttUrl, topic)).toBe('online');

    const offline = await sub.until(topic, 'offline', 10_000);
    // Within a second of the device's timeout (1.5 s after its message).
    expect(offline.at - sentAt).toBeLessThan(1500 + 1000);
    expect(offline.at - sentAt).toBeGreaterThanOrEqual(1500 - 50);
    expect(await retained(SERVICES.mqttUrl, topic)).toBe('offline');

    // The boolean is stored as 1 (the string skipped and counted), not the whole message dropped.
    let history = '';
    const deadline = Date.now() + 10_000;
    while (!history.includes('"occupancy"') && Date.now() < deadline) {
      history = await (await fetch(httpUrl(hub, `/status/${id}/history`))).text();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(history).toContain('"occupancy":1');
    expect(history).not.toContain('"mode"');
    const metrics = await (await fetch(httpUrl(hub, '/metrics'))).text();
    expect(metrics).toMatch(/vigil_readings_skipped_total\{reason="string"\} [1-9]/);
  }, 30_000);

  it('{"state":"offline"} on the status input marks a device offline; deleting it clears its retained availability', async () => {
    const hub = await startTestHub('services', { PRESENCE_BACKLOG_WAIT_S: '0' });
    hubs.push(hub);
    const prefix = hub.config.MQTT_TOPIC_PREFIX;
    const id = `d-${randomSuffix()}`;
    const topic = `${prefix}/${id}/availability`;
    const sub = await subscriber(SERVICES.mqttUrl, [topic]);
    clients.push(sub.client);
    const dev = await device(SERVICES.mqttUrl);
    await dev.publishAsync(`${prefix}/${id}/heartbeat`, '', { qos: 1 });
    await sub.until(topic, 'online');
    await dev.publishAsync(`${prefix}/${id}/status`, '{"state":"offline"}', { qos: 1 });
    await sub.until(topic, 'offline');
    expect(hub.hub.registry.get(id)?.status).toBe('offline');

    const deleted = await fetch(httpUrl(hub, `/devices/${id}`), { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    await sub.until(topic, '');
    expect(await retained(SERVICES.mqttUrl, topic)).toBeNull();
  }, 30_000);
});

describe('across a hub restart', () => {
  it('republishes nothing stale: no availability for a device that stayed offline or one that kept publishing', async () => {
    const env: Record<string, string> = { ...testHubEnv('services'), OFFLINE_TIMEOUT_S: '1.5', PRESENCE_BACKLOG_WAIT_S: '0' };
    const prefix = env.MQTT_TOPIC_PREFIX!;
    const quiet = `quiet-${randomSuffix()}`;
    const busy = `busy-${randomSuffix()}`;
    const sub = await subscriber(SERVICES.mqttUrl, [`${prefix}/+/availability`]);
    clients.push(sub.client);
    const first = await startHubWithEnv(env);
    const dev = await device(SERVICES.mqttUrl);
    await dev.publishAsync(`${prefix}/${quiet}/heartbeat`, '', { qos: 1 });
    await sub.until(`${prefix}/${quiet}/availability`, 'offline', 10_000); // silent past its timeout
    // The busy device keeps publishing through the restart, faster than its timeout.
    const beat = setInterval(() => void dev.publishAsync(`${prefix}/${busy}/heartbeat`, '', { qos: 1 }).catch(() => undefined), 250);
    try {
      await sub.until(`${prefix}/${busy}/availability`, 'online');
      await first.stop();
      const restartedAt = Date.now();
      const second = await startHubWithEnv(env);
      hubs.push(second);
      // Both devices are known again (restored) and the busy one is heard from.
      await poll(() => second.hub.registry.get(busy)?.status === 'online' && second.hub.registry.get(quiet)?.status === 'offline', 10_000, 'states restored');
      await letTimePass(3000, 'longer than the timeout: a false offline would have come');
      const live = sub.seen.filter((m) => !m.retain && m.at >= restartedAt);
      expect(live, 'publications after the restart').toEqual([]);
    } finally {
      clearInterval(beat);
    }
  }, 60_000);
});

/** One sample of the hub's /metrics (0 when absent), e.g. `vigil_mqtt_messages_total{kind="status",outcome="accepted"}`. */
async function sample(hub: RunningHub, series: string): Promise<number> {
  const text = await (await fetch(httpUrl(hub, '/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('retained input messages across a hub restart', () => {
  it("a retained Tasmota `Online` (LWT) and retained SENSOR do not bring back a device the hub timed out", async () => {
    const env: Record<string, string> = { ...testHubEnv('services'), MQTT_PRESET: 'tasmota', OFFLINE_TIMEOUT_S: '1.5', PRESENCE_BACKLOG_WAIT_S: '0' };
    const prefix = env.MQTT_TOPIC_PREFIX!;
    const plug = `tasmota_${randomSuffix().toUpperCase()}`;
    const topic = `${prefix}/${plug}/availability`;
    const lwt = `tele/${plug}/LWT`;
    const sensor = `tele/${plug}/SENSOR`;
    const sub = await subscriber(SERVICES.mqttUrl, [topic]);
    clients.push(sub.client);
    const first = await startHubWithEnv(env);
    // Tasmota says Online (retained, its Will is Offline) and keeps its connection, but stops reporting.
    const tasmota = await device(SERVICES.mqttUrl, { will: { topic: lwt, payload: Buffer.from('Offline'), qos: 1, retain: true } });
    try {
      await tasmota.publishAsync(lwt, 'Online', { qos: 1, retain: true });
      await tasmota.publishAsync(sensor, JSON.stringify({ Time: '2026-12-01T14:00:05', AM2301: { Temperature: 21.3 } }), { qos: 1, retain: true });
      await sub.until(topic, 'online');
      await sub.until(topic, 'offline', 10_000); // silent past its timeout
      const storedTs = first.hub.registry.get(plug)!.telemetry!.ts;
      await first.stop();
      const restartedAt = Date.now();
      const second = await startHubWithEnv(env);
      hubs.push(second);
      // The retained LWT and SENSOR are delivered at the new subscription: both read, neither taken as live.
      await poll(async () => (await sample(second, 'vigil_mqtt_messages_total{kind="status",outcome="accepted"}')) >= 1, 10_000, 'retained LWT read');
      await letTimePass(2500, 'longer than the timeout: a false online, then offline, would have come');
      expect(sub.seen.filter((m) => !m.retain && m.at >= restartedAt), 'publications after the restart').toEqual([]);
      expect(second.hub.registry.get(plug)?.status).toBe('offline');
      expect(second.hub.registry.get(plug)?.telemetry?.ts).toBe(storedTs);
      expect(await sample(second, 'vigil_mqtt_messages_total{kind="telemetry",outcome="retained"}')).toBe(1);
      // A live word still counts: the device reports again.
      await tasmota.publishAsync(lwt, 'Online', { qos: 1, retain: true });
      await poll(() => second.hub.registry.get(plug)?.status === 'online', 5000, 'online on a live LWT');
    } finally {
      await tasmota.publishAsync(lwt, '', { qos: 1, retain: true });
      await tasmota.publishAsync(sensor, '', { qos: 1, retain: true });
    }
  }, 60_000);

  it('Zigbee2MQTT availability holds a device that reports only on change online past its timeout, through a restart, until Zigbee2MQTT says offline', async () => {
    const env: Record<string, string> = { ...testHubEnv('services'), MQTT_PRESET: 'zigbee2mqtt', OFFLINE_TIMEOUT_S: '1.5', PRESENCE_BACKLOG_WAIT_S: '0' };
    const prefix = env.MQTT_TOPIC_PREFIX!;
    const contact = `door-${randomSuffix()}`;
    const topic = `${prefix}/${contact}/availability`;
    const availability = `zigbee2mqtt/${contact}/availability`;
    const sub = await subscriber(SERVICES.mqttUrl, [topic]);
    clients.push(sub.client);
    const first = await startHubWithEnv(env);
    const bridge = await device(SERVICES.mqttUrl);
    try {
      // As Zigbee2MQTT does: availability retained, the state once (a contact sensor reports on change).
      await bridge.publishAsync(availability, 'online', { qos: 1, retain: true });
      await bridge.publishAsync(`zigbee2mqtt/${contact}`, JSON.stringify({ battery: 100, contact: true, linkquality: 87, last_seen: Date.now() }), { qos: 1 });
      await sub.until(topic, 'online');
      await letTimePass(3000, 'twice its timeout: it would have gone offline unless held');
      expect(first.hub.registry.get(contact)?.status).toBe('online');
      const held = (await (await fetch(httpUrl(first, `/devices/${contact}`))).json()) as { offline_timeout_source?: string };
      expect(held.offline_timeout_source).toBe('held');
      await first.stop();
      const restartedAt = Date.now();
      const second = await startHubWithEnv(env);
      hubs.push(second);
      // The retained `online` holds it again (no sign of life, so its last seen stays).
      await poll(async () => (await sample(second, 'vigil_mqtt_messages_total{kind="status",outcome="accepted"}')) >= 1, 10_000, 'retained availability read');
      await letTimePass(3000, 'twice its timeout after the restart');
      expect(second.hub.registry.get(contact)?.status).toBe('online');
      expect(sub.seen.filter((m) => m.at >= restartedAt && !m.retain), 'no offline contradicting Zigbee2MQTT').toEqual([]);
      await bridge.publishAsync(availability, 'offline', { qos: 1, retain: true });
      await sub.until(topic, 'offline');
      expect(second.hub.registry.get(contact)?.status).toBe('offline');
    } finally {
      await bridge.publishAsync(availability, '', { qos: 1, retain: true });
    }
  }, 60_000);
});

describe("the hub's own state (a hub process)", () => {
  it('is online while the hub runs and offline once it is SIGKILLed (its Last Will)', async () => {
    const stateTopic = `t${randomSuffix()}/vigil/hub/state`;
    const env = { ...testHubEnv('services'), HUB_STATE_TOPIC: stateTopic, LOG_LEVEL: 'info' };
    const proc = await spawnHub(env);
    try {
      const sub = await subscriber(SERVICES.mqttUrl, [stateTopic]);
      clients.push(sub.client);
      await sub.until(stateTopic, 'online');
      expect(await retained(SERVICES.mqttUrl, stateTopic)).toBe('online');
      proc.child.kill('SIGKILL');
      await sub.until(stateTopic, 'offline', 15_000);
      expect(await retained(SERVICES.mqttUrl, stateTopic)).toBe('offline');
    } finally {
      await proc.stop('SIGKILL');
    }
    // A graceful stop says offline too (a new hub first says online).
    const again = await spawnHub(env);
    const sub = await subscriber(SERVICES.mqttUrl, [stateTopic]);
    clients.push(sub.client);
    await poll(() => sub.last(stateTopic)?.payload === 'online', 10_000, 'online again');
    expect(await again.stop('SIGTERM')).toBe(0);
    await poll(() => sub.last(stateTopic)?.payload === 'offline', 10_000, 'offline after SIGTERM');
    // Leave nothing retained behind on the shared broker.
    await sub.client.publishAsync(stateTopic, '', { qos: 1, retain: true });
  }, 60_000);
});

describe('fleets as they are, by configuration alone', () => {
  it('monitors a Zigbee2MQTT fleet and a Tasmota fleet with their documented topics and payloads', async () => {
    const hub = await startTestHub('services', { MQTT_PRESET: 'zigbee2mqtt,tasmota', AVAILABILITY_FORMAT: 'json', PRESENCE_BACKLOG_WAIT_S: '0' });
    hubs.push(hub);
    const prefix = hub.config.MQTT_TOPIC_PREFIX;
    const sensor = `z-${randomSuffix()}`;
    const plug = `tasmota_${randomSuffix().toUpperCase()}`;
    const sub = await subscriber(SERVICES.mqttUrl, [`${prefix}/${sensor}/availability`, `${prefix}/${plug}/availability`]);
    clients.push(sub.client);
    const bridge = await device(SERVICES.mqttUrl);
    // Zigbee2MQTT: the bridge's own topics are not a device; a device's state is its friendly name's topic.
    await bridge.publishAsync('zigbee2mqtt/bridge/state', '{"state":"online"}', { qos: 1 });
    // A full state as Zigbee2MQTT 1.x/2.x sends it (advanced.last_seen: epoch; the OTA `update` object).
    const state = {
      battery: 97, linkquality: 120, occupancy: true, temperature: 21.3, voltage: 3000, illuminance: 14, device_temperature: 27,
      power_outage_count: 3, last_seen: Date.now(), update_available: false,
      update: { state: 'idle', installed_version: 16777241, latest_version: 16777241 },
    };
    await bridge.publishAsync(`zigbee2mqtt/${sensor}`, JSON.stringify(state), { qos: 1 });
    await bridge.publishAsync(`zigbee2mqtt/${sensor}/availability`, '{"state":"online"}', { qos: 1 });
    await sub.until(`${prefix}/${sensor}/availability`, '{"state":"online"}');
    await poll(() => hub.hub.registry.get(sensor)?.telemetry?.batteryLevel === 97, 5000, 'z2m reading');
    expect({ ...hub.hub.registry.get(sensor)!.telemetry!.metrics }).toEqual({
      linkquality: 120, occupancy: 1, temperature: 21.3, voltage: 3000, illuminance: 14, device_temperature: 27, power_outage_count: 3,
      update_available: 0, 'update.installed_version': 16777241, 'update.latest_version': 16777241,
    });
    // A battery out of range (some devices report 101 or 200 %) is skipped and counted; the rest is stored.
    await bridge.publishAsync(`zigbee2mqtt/${sensor}`, JSON.stringify({ ...state, battery: 101, temperature: 22.5, last_seen: Date.now() }), { qos: 1 });
    await poll(() => hub.hub.registry.get(sensor)?.telemetry?.metrics?.temperature === 22.5, 5000, 'the rest of the state stored');
    expect(hub.hub.registry.get(sensor)?.telemetry?.batteryLevel).toBeNull();
    await poll(async () => (await sample(hub, 'vigil_readings_skipped_total{reason="out_of_range"}')) === 1, 5000, 'out_of_range counted');
    await bridge.publishAsync(`zigbee2mqtt/${sensor}/availability`, '{"state":"offline"}', { qos: 1 });
    await sub.until(`${prefix}/${sensor}/availability`, '{"state":"offline"}');

    // Tasmota: SENSOR with nested sensor objects, STATE with Wifi, LWT Online/Offline (retained, as Tasmota does).
    const lwt = `tele/${plug}/LWT`;
    const tasmota = await device(SERVICES.mqttUrl, { will: { topic: lwt, payload: Buffer.from('Offline'), qos: 1, retain: true } });
    await tasmota.publishAsync(lwt, 'Online', { qos: 1, retain: true });
    await tasmota.publishAsync(`tele/${plug}/STATE`, JSON.stringify({ Time: '2026-12-01T14:00:00', Uptime: '0T00:10:45', UptimeSec: 645, POWER: 'ON', Wifi: { AP: 1, SSId: 'home', RSSI: 80, Signal: -60 } }), { qos: 1 });
    await sub.until(`${prefix}/${plug}/availability`, '{"state":"online"}');
    await poll(() => hub.hub.registry.get(plug)?.telemetry?.rssi === -60, 5000, 'tasmota STATE: Wifi.Signal as rssi');
    await tasmota.publishAsync(`tele/${plug}/SENSOR`, JSON.stringify({ Time: '2026-12-01T14:00:05', AM2301: { Temperature: 21.3, Humidity: 40 }, TempUnit: 'C' }), { qos: 1 });
    await poll(() => hub.hub.registry.get(plug)?.telemetry?.metrics?.['AM2301.Temperature'] === 21.3, 5000, 'tasmota sensor reading');
    expect(hub.hub.registry.get(plug)!.telemetry!.metrics).toMatchObject({ 'AM2301.Humidity': 40 });
    // A two-channel energy meter, as Tasmota documents it: arrays per channel.
    await tasmota.publishAsync(`tele/${plug}/SENSOR`, JSON.stringify({ Time: '2026-12-01T14:00:10', ENERGY: { TotalStartTime: '2026-01-01T00:00:00', Total: [1.5, 2.25], Yesterday: [0.1, 0.2], Today: [0.3, 0.4], Period: [0, 0], Power: [12, 0], ApparentPower: [14, 0], ReactivePower: [7, 0], Factor: [0.86, 0], Voltage: [230, 231], Current: [0.061, 0] } }), { qos: 1 });
    await poll(() => hub.hub.registry.get(plug)?.telemetry?.metrics?.['ENERGY.Voltage.1'] === 231, 5000, 'tasmota energy channels');
    expect(hub.hub.registry.get(plug)!.telemetry!.metrics).toMatchObject({ 'ENERGY.Voltage.0': 230, 'ENERGY.Power.0': 12, 'ENERGY.Total.1': 2.25, 'ENERGY.Current.0': 0.061 });
    // The device dies: the broker publishes its Last Will, Offline.
    (tasmota.stream as unknown as { destroy(): void }).destroy();
    await sub.until(`${prefix}/${plug}/availability`, '{"state":"offline"}');
    expect(hub.hub.registry.get('bridge')).toBeUndefined();
    await bridge.publishAsync(lwt, '', { qos: 1, retain: true });
  }, 30_000);
});

describe('Home Assistant discovery', () => {
  it('publishes retained configs tied to the availability topics, a throttled state, and removes them on delete', async () => {
    const haPrefix = `t${randomSuffix()}/homeassistant`;
    const hub = await startTestHub('services', { HA_DISCOVERY: 'true', HA_DISCOVERY_PREFIX: haPrefix, HA_STATE_INTERVAL_S: '1', HUB_STATE_TOPIC: `${haPrefix}-hub/state`, PRESENCE_BACKLOG_WAIT_S: '0' });
    hubs.push(hub);
    const prefix = hub.config.MQTT_TOPIC_PREFIX;
    const id = `ha.${randomSuffix()}`;
    const sub = await subscriber(SERVICES.mqttUrl, [`${haPrefix}/#`, `${prefix}/+/health`]);
    clients.push(sub.client);
    const dev = await device(SERVICES.mqttUrl);
    await dev.publishAsync(`${prefix}/${id}/telemetry`, JSON.stringify({ battery_level: 64, rssi: -70 }), { qos: 1 });
    const configs = await poll(() => {
      const got = sub.seen.filter((m) => m.topic.endsWith('/config') && m.payload.includes(`"name":"${id}"`));
      return got.length === 4 ? got : null;
    }, 10_000, 'four discovery configs');
    const byTopic = Object.fromEntries(configs.map((c) => [c.topic.slice(haPrefix.length + 1), JSON.parse(c.payload) as Record<string, unknown>]));
    const connectivity = Object.entries(byTopic).find(([t]) => t.startsWith('binary_sensor/'))![1];
    expect(connectivity).toMatchObject({ device_class: 'connectivity', state_topic: `${prefix}/${id}/availability`, payload_on: 'online', payload_off: 'offline' });
    expect(Object.keys(byTopic).map((t) => `${t.split('/')[0]}:${t.split('/')[2]}`).sort()).toEqual(['binary_sensor:connectivity', 'sensor:battery', 'sensor:rssi', 'sensor:score']);
    const battery = Object.entries(byTopic).find(([t]) => t.endsWith('/battery/config'))![1];
    expect(battery).toMatchObject({ device_class: 'battery', state_topic: `${prefix}/${id}/health`, availability_mode: 'all' });
    expect(JSON.stringify(battery.availability)).toContain(`${prefix}/${id}/availability`);
    const health = await poll(() => sub.seen.find((m) => m.topic === `${prefix}/${id}/health`), 10_000, 'health state');
    expect(JSON.parse(health.payload)).toMatchObject({ status: 'online', battery: 64, rssi: -70 });
    expect(typeof (JSON.parse(health.payload) as { score: unknown }).score).toBe('number');
    // A battery change reaches the state topic (within HA_STATE_INTERVAL_S), though the score hardly moves.
    await dev.publishAsync(`${prefix}/${id}/telemetry`, JSON.stringify({ battery_level: 63 }), { qos: 1 });
    const changed = await poll(() => sub.seen.find((m) => m.topic === `${prefix}/${id}/health` && (JSON.parse(m.payload) as { battery?: number }).battery === 63), 10_000, 'battery 63 on the health state');
    expect(JSON.parse(changed.payload)).toMatchObject({ status: 'online', battery: 63, rssi: -70 });
    // The entities carry the hub's node id (HA_NODE_ID, derived from the topic prefix here).
    expect(configs.every((c) => c.topic.includes(`/${haNodeId(hub.config)}_`))).toBe(true);
    // A device that never sends a battery level or rssi gets no battery or RSSI entity.
    const plain = `plain.${randomSuffix()}`;
    await dev.publishAsync(`${prefix}/${plain}/telemetry`, JSON.stringify({ metrics: { t: 1 } }), { qos: 1 });
    await poll(() => sub.seen.some((m) => m.topic.endsWith('/score/config') && m.payload.includes(`"name":"${plain}"`)), 10_000, 'plain device discovered');
    await letTimePass(300, 'the other configs, had they been published, come with the first two');
    expect(sub.seen.filter((m) => m.topic.endsWith('/config') && m.payload.includes(`"name":"${plain}"`)).map((m) => m.topic.split('/').at(-2)).sort()).toEqual(['connectivity', 'score']);
    expect((await fetch(httpUrl(hub, `/devices/${plain}`), { method: 'DELETE' })).status).toBe(200);
    for (const c of configs) expect(await retained(SERVICES.mqttUrl, c.topic)).toBe(c.payload);

    expect((await fetch(httpUrl(hub, `/devices/${id}`), { method: 'DELETE' })).status).toBe(200);
    await poll(() => configs.every((c) => sub.seen.some((m) => m.topic === c.topic && m.payload === '')), 10_000, 'configs removed');
    expect(await retained(SERVICES.mqttUrl, configs[0]!.topic)).toBeNull();
  }, 30_000);
});

describe('Home Assistant discovery with AVAILABILITY_FORMAT=json', () => {
  it('gives every availability and the connectivity state a value_template reading {"state":…}', async () => {
    const haPrefix = `t${randomSuffix()}/homeassistant`;
    const hubState = `${haPrefix}-hub/state`;
    const hub = await startTestHub('services', { HA_DISCOVERY: 'true', HA_DISCOVERY_PREFIX: haPrefix, HA_STATE_INTERVAL_S: '1', AVAILABILITY_FORMAT: 'json', HUB_STATE_TOPIC: hubState, PRESENCE_BACKLOG_WAIT_S: '0' });
    hubs.push(hub);
    const prefix = hub.config.MQTT_TOPIC_PREFIX;
    const id = `haj-${randomSuffix()}`;
    const sub = await subscriber(SERVICES.mqttUrl, [`${haPrefix}/#`, `${prefix}/${id}/availability`, hubState]);
    clients.push(sub.client);
    const dev = await device(SERVICES.mqttUrl);
    await dev.publishAsync(`${prefix}/${id}/telemetry`, JSON.stringify({ battery_level: 70, rssi: -65 }), { qos: 1 });
    const configs = await poll(() => {
      const got = sub.seen.filter((m) => m.topic.endsWith('/config') && m.payload.includes(`"name":"${id}"`));
      return got.length === 4 ? got.map((c) => JSON.parse(c.payload) as { device_class?: string; value_template?: string; availability?: { topic: string; value_template?: string }[] }) : null;
    }, 10_000, 'four discovery configs');
    await sub.until(`${prefix}/${id}/availability`, '{"state":"online"}');
    await sub.until(hubState, '{"state":"online"}');
    const connectivity = configs.find((c) => c.device_class === 'connectivity')!;
    expect(connectivity.value_template).toBe('{{ value_json.state }}');
    for (const config of configs) {
      for (const entry of config.availability ?? []) expect(entry.value_template, entry.topic).toBe('{{ value_json.state }}');
    }
    expect(configs.filter((c) => c.device_class !== 'connectivity').every((c) => c.availability?.some((e) => e.topic === `${prefix}/${id}/availability`))).toBe(true);
    expect((await fetch(httpUrl(hub, `/devices/${id}`), { method: 'DELETE' })).status).toBe(200);
    await sub.client.publishAsync(hubState, '', { qos: 1, retain: true });
  }, 30_000);
});

describe('the embedded broker (aedes)', () => {
  it('keeps availability retained, delivers a device Last Will, and says the hub is offline at a graceful stop', async () => {
    const hub = await startTestHub('embedded', { PRESENCE_BACKLOG_WAIT_S: '0' });
    const url = hub.mqttUrl;
    const prefix = hub.config.MQTT_TOPIC_PREFIX;
    const id = `e-${randomSuffix()}`;
    const topic = `${prefix}/${id}/availability`;
    const hubSub = await subscriber(url, ['vigil/hub/state', topic]);
    await hubSub.until('vigil/hub/state', 'online');
    const dev = await connectAsync(url, { clientId: `dev-${randomSuffix()}`, reconnectPeriod: 0, will: { topic: `${prefix}/${id}/status`, payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: false } });
    await dev.publishAsync(`${prefix}/${id}/telemetry`, '{"metrics":{"open":false}}', { qos: 1 });
    await hubSub.until(topic, 'online');
    expect(await retained(url, topic)).toBe('online');
    (dev.stream as unknown as { destroy(): void }).destroy();
    await hubSub.until(topic, 'offline');
    expect(hub.hub.registry.get(id)?.telemetry?.metrics).toMatchObject({ open: 0 });
    await hub.stop();
    await poll(() => hubSub.last('vigil/hub/state')?.payload === 'offline', 5000, 'hub offline at stop');
    await hubSub.client.endAsync().catch(() => undefined);
  }, 30_000);
});

describe('in a cluster', () => {
  it('each transition is published once (by the owner), and each instance has its own state topic', async () => {
    const run = randomSuffix();
    const base = testHubEnv('services');
    const shared = { ...base, CLUSTER_ENABLED: 'true', OFFLINE_TIMEOUT_S: '1.5', PRESENCE_SWEEP_MS: '100', PRESENCE_BACKLOG_WAIT_S: '0' };
    const a = await startHubWithEnv({ ...shared, CLUSTER_INSTANCE_ID: `a-${run}`, MQTT_CLIENT_ID: `vigil-a-${run}` });
    hubs.push(a);
    const b = await startHubWithEnv({ ...shared, CLUSTER_INSTANCE_ID: `b-${run}`, MQTT_CLIENT_ID: `vigil-b-${run}`, DATA_DIR: `${base.DATA_DIR}-b` });
    hubs.push(b);
    const prefix = base.MQTT_TOPIC_PREFIX!;
    const states = [`vigil/hub/a-${run}/state`, `vigil/hub/b-${run}/state`];
    const sub = await subscriber(SERVICES.mqttUrl, [`${prefix}/+/availability`, ...states]);
    clients.push(sub.client);
    for (const topic of states) await sub.until(topic, 'online');
    await poll(async () => (await fetch(httpUrl(a, '/metrics')).then((r) => r.text())).includes('vigil_cluster_members 2'), 10_000, 'two members');

    const ids = Array.from({ length: 20 }, (_, i) => `c${i}-${run}`);
    const dev = await device(SERVICES.mqttUrl);
    for (const id of ids) await dev.publishAsync(`${prefix}/${id}/telemetry`, '{"battery_level":50}', { qos: 1 });
    for (const id of ids) await sub.until(`${prefix}/${id}/availability`, 'offline', 15_000);
    // Both instances have had time to report anything twice: let another sweep pass by the clock.
    const settled = Date.now() + 1000;
    await poll(() => Date.now() > settled, 2000, 'settle');
    for (const id of ids) {
      const payloads = sub.seen.filter((m) => m.topic === `${prefix}/${id}/availability`).map((m) => m.payload);
      expect(payloads, id).toEqual(['online', 'offline']);
    }
    for (const topic of states) await sub.client.publishAsync(topic, '', { qos: 1, retain: true });
  }, 60_000);
});
