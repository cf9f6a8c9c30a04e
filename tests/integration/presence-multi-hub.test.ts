import { connectAsync } from 'mqtt';
import postgres from 'postgres';
import { afterAll, expect, inject, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';
import { letTimePass } from '../helpers/wait.js';

const hubs: HubProcess[] = [];
const clients: TestClient[] = [];
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(hubs.map((h) => h.stop()));
});

it('three hub processes on one Redis store and push each transition exactly once', async () => {
  const run = randomSuffix();
  const prefix = `t${run}/devices`;
  const shared = {
    MQTT_URL: SERVICES.mqttUrl,
    REDIS_URL: SERVICES.redisUrl,
    DATABASE_URL: inject('postgresUrl'),
    REDIS_KEY_PREFIX: `vigil-test:${run}:`,
    MQTT_TOPIC_PREFIX: prefix,
    MQTT_CLEAN_SESSION: 'true',
    OFFLINE_TIMEOUT_S: '1',
    PRESENCE_SWEEP_MS: '100',
    PORT: '0',
  };
  for (let i = 0; i < 3; i++) hubs.push(await spawnHub({ ...shared, MQTT_CLIENT_ID: `vigil-${run}-${i}`, DATA_DIR: `/tmp/vigil-${run}-${i}` }));

  const watched = `${run}-d0`;
  for (const hub of hubs) {
    const client = await TestClient.connect(`ws://127.0.0.1:${hub.port}/ws`);
    await client.request({ type: 'subscribe_device', device_id: watched }, 1);
    clients.push(client);
  }

  // Every hub receives every message (plain subscriptions): 40 devices, one message each.
  const device = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${run}`, clean: true });
  const ids = Array.from({ length: 40 }, (_, i) => `${run}-d${i}`);
  // With a device timestamp, the three hubs' copies of a message are one row (device_id, ts).
  const ts = Date.now();
  for (const id of ids) await device.publishAsync(`${prefix}/${id}/telemetry`, JSON.stringify({ battery_level: 50, timestamp: ts }), { qos: 1 });
  await device.endAsync();

  // Each WS client, whatever hub it is on, sees the watched device go online and offline once.
  for (const client of clients) {
    await client.next((f) => f.type === 'status_change' && f.status === 'offline', 6000);
  }
  // A second transition from another hub would arrive meanwhile, and the writers flush every 200 ms.
  await letTimePass(800, 'no further status_change may come; the rows are stored');
  for (const client of clients) {
    expect(client.ofType('status_change').map((f) => f.status)).toEqual(['online', 'offline']);
  }

  const sql = postgres(inject('postgresUrl'), { max: 1, onnotice: () => undefined });
  try {
    const rows = await sql<{ device_id: string; status: string; n: number }[]>`
      select device_id, status, count(*)::int as n from status_changes where device_id like ${`${run}-%`} group by 1, 2`;
    expect(rows).toHaveLength(80);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    const counted = await sql<{ n: number }[]>`select count(*)::int as n from telemetry where device_id like ${`${run}-%`}`;
    expect(counted[0]?.n).toBe(40);
  } finally {
    await sql.end();
  }
});
