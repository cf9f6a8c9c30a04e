import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { afterAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { startTestHub, wsUrl } from '../helpers/hub.js';
import { TestClient } from '../helpers/ws-client.js';
import { eventually, letTimePass } from '../helpers/wait.js';

/*
 * The shipped example ACL (deploy/mosquitto/acl.example) on a real Mosquitto: a device cannot
 * publish as another, and the hub, with its own credentials, still ingests every device.
 */
let broker: ChildProcess | undefined;
let hub: RunningHub | undefined;
afterAll(async () => {
  await hub?.stop();
  broker?.kill('SIGTERM');
});

it('with the example ACL a device cannot publish as another, and the hub still sees every device', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-acl-'));
  const port = 20_000 + Math.floor(Math.random() * 10_000);
  const passwd = join(dir, 'passwd');
  writeFileSync(passwd, '');
  for (const [user, password] of [['vigil-hub', 'hub-secret'], ['sensor-1', 'one'], ['sensor-2', 'two'], ['homeassistant', 'ha-secret']]) {
    const r = spawnSync('mosquitto_passwd', ['-b', passwd, user!, password!]);
    expect(r.status, r.stderr?.toString()).toBe(0);
  }
  copyFileSync(new URL('../../deploy/mosquitto/acl.example', import.meta.url), join(dir, 'acl'));
  const conf = readFileSync(new URL('../../deploy/mosquitto/secure.conf.example', import.meta.url), 'utf8')
    .replace('listener 1883', `listener ${port} 127.0.0.1`)
    .replaceAll('/mosquitto/config/', `${dir}/`)
    .replace('persistence true', 'persistence false')
    .replace(/^persistence_location.*$/m, '');
  writeFileSync(join(dir, 'mosquitto.conf'), conf);
  // Mosquitto started as root drops to its own user, which must be able to read these.
  chmodSync(dir, 0o755);
  for (const file of ['passwd', 'acl', 'mosquitto.conf']) chmodSync(join(dir, file), 0o644);
  broker = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  const url = `mqtt://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    const ok = await connectAsync(url, { username: 'sensor-1', password: 'one', connectTimeout: 500, reconnectPeriod: 0 }).then((c) => c.endAsync().then(() => true), () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  await expect(connectAsync(url, { username: 'sensor-1', password: 'wrong', reconnectPeriod: 0 })).rejects.toThrow();
  hub = await startTestHub('services', { MQTT_URL: url, MQTT_TOPIC_PREFIX: 'devices', MQTT_USERNAME: 'vigil-hub', MQTT_PASSWORD: 'hub-secret', HA_DISCOVERY: 'true', HA_STATE_INTERVAL_S: '1' });
  // Home Assistant with its own user: it reads what the hub publishes, and nothing of the devices'.
  const ha = await connectAsync(url, { username: 'homeassistant', password: 'ha-secret', protocolVersion: 5, reconnectPeriod: 0 });
  const haSeen: { topic: string; payload: string }[] = [];
  ha.on('message', (topic, payload) => haSeen.push({ topic, payload: payload.toString() }));
  await ha.subscribeAsync(['devices/+/availability', 'devices/+/health', 'vigil/hub/#', 'homeassistant/#', 'devices/+/telemetry'], { qos: 1 });
  const watcher = await TestClient.connect(wsUrl(hub));
  await watcher.request({ type: 'subscribe_all' }, 1);

  const one = await connectAsync(url, { username: 'sensor-1', password: 'one', protocolVersion: 5 });
  await one.publishAsync('devices/sensor-1/telemetry', JSON.stringify({ battery_level: 80 }), { qos: 1 });
  // Publishing as sensor-2: MQTT 5 brokers answer "not authorized" (135) and drop it.
  const spoof = await one.publishAsync('devices/sensor-2/telemetry', JSON.stringify({ battery_level: 1 }), { qos: 1 }).then(
    (packet) => (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0,
    (error: { code?: number }) => error.code ?? -1,
  );
  const two = await connectAsync(url, { username: 'sensor-2', password: 'two' });
  await two.publishAsync('devices/sensor-2/telemetry', JSON.stringify({ battery_level: 60 }), { qos: 1 });
  await watcher.next((f) => f.type === 'status_change' && f.device_id === 'sensor-2');
  await letTimePass(300, 'a spoofed message the broker let through would have arrived by now');

  expect(spoof).toBe(135);
  // Devices restored from the shared test database may be reconciled offline meanwhile: only comings online count.
  const online = watcher.ofType('status_change').filter((f) => f.status === 'online').map((f) => f.device_id);
  expect(online).toEqual(['sensor-1', 'sensor-2']);
  expect(hub.hub.registry.get('sensor-2')?.telemetry?.batteryLevel).toBe(60);

  const haGot = (topic: string, payload?: string) => haSeen.some((m) => m.topic === topic && (payload === undefined || m.payload === payload));
  await eventually('Home Assistant reads availability, health state, the hub state and discovery', () =>
    haGot('devices/sensor-1/availability', 'online') && haGot('vigil/hub/state', 'online') && haGot('homeassistant/binary_sensor/vigil_sensor-1/connectivity/config') && haGot('devices/sensor-2/health'), 10_000);
  expect(haSeen.filter((m) => m.topic.endsWith('/telemetry')), 'device telemetry is not for consumers').toEqual([]);
  const reasonOf = (publishing: Promise<unknown>) => publishing.then(
    (packet) => (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0,
    (error: { code?: number }) => error.code ?? -1,
  );
  // Its birth message is allowed; speaking as a device or as the hub is not.
  expect(await reasonOf(ha.publishAsync('homeassistant/status', 'online', { qos: 1 }))).toBe(0);
  expect(await reasonOf(ha.publishAsync('devices/sensor-1/status', 'offline', { qos: 1 }))).toBe(135);
  expect(await reasonOf(ha.publishAsync('devices/sensor-1/availability', 'offline', { qos: 1 }))).toBe(135);
  expect(await reasonOf(ha.publishAsync('homeassistant/sensor/x/battery/config', '{}', { qos: 1 }))).toBe(135);
  expect(hub.hub.registry.get('sensor-1')?.status).toBe('online');
  await ha.endAsync();
  await one.endAsync();
  await two.endAsync();
  watcher.close();
});
