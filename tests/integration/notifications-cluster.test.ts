import { connectAsync } from 'mqtt';
import postgres from 'postgres';
import { afterAll, expect, it } from 'vitest';
import { freshDatabases } from '../helpers/fresh-database.js';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { AlertmanagerReceiver, WebhookReceiver, until } from '../helpers/notification-receivers.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { sinkId } from '../../src/notify/sink.js';

/*
 * Three hub processes sharing PostgreSQL, Redis and Mosquitto, all polling the one outbox: each
 * event of a low battery episode on many devices reaches the webhook exactly once (counted by id)
 * and Alertmanager once raised and once with endsAt. The receivers answer slowly, so claims of
 * the three instances overlap.
 */
const SECRET = 'cluster-webhook-secret-0123456789';
const run = randomSuffix();
const devices = Array.from({ length: 12 }, (_, i) => `${run}-d${i}`);
const databases = freshDatabases();
const hubs: HubProcess[] = [];
const webhook = new WebhookReceiver(SECRET);
const alertmanager = new AlertmanagerReceiver();

afterAll(async () => {
  await Promise.all(hubs.map((h) => h.stop()));
  await webhook.down();
  await alertmanager.down();
  await databases.dropAll();
});

async function members(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^vigil_cluster_members (\d+)/m.exec(text)?.[1] ?? 0);
}

it('delivers each event once across a three-instance cluster', async () => {
  await webhook.up();
  await alertmanager.up();
  webhook.delayMs = 150;
  alertmanager.delayMs = 150;
  const url = await databases.create();
  const prefix = `nc${run}/devices`;
  const env = (name: string): Record<string, string> => ({
    MQTT_URL: SERVICES.mqttUrl,
    REDIS_URL: SERVICES.redisUrl,
    DATABASE_URL: url,
    REDIS_KEY_PREFIX: `vigil-notify:${run}:`,
    MQTT_TOPIC_PREFIX: prefix,
    CLUSTER_ENABLED: 'true',
    CLUSTER_INSTANCE_ID: `${name}-${run}`,
    PORT: '0',
    DATA_DIR: `/tmp/vigil-notify-${run}-${name}`,
    ALERT_WEBHOOK_URL: webhook.url,
    ALERT_WEBHOOK_SECRET: SECRET,
    ALERTMANAGER_URL: alertmanager.url,
    ALERTMANAGER_RESEND_S: '3600',
    NOTIFY_POLL_MS: '100',
    NOTIFY_CONCURRENCY: '2',
  });
  const wh = sinkId('webhook', webhook.url);
  // One at a time: the first creates the schema.
  for (const name of ['a', 'b', 'c']) hubs.push(await spawnHub(env(name)));
  await until('three members', async () => (await Promise.all(hubs.map((h) => members(h.port)))).every((n) => n === 3), 20_000);

  const client = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${run}`, reconnectPeriod: 0 });
  const publishAll = (battery: number) =>
    Promise.all(devices.map((d) => client.publishAsync(`${prefix}/${d}/telemetry`, JSON.stringify({ battery_level: battery }), { qos: 1 })));
  await publishAll(10);
  await until('every raised at the webhook', () => devices.every((d) => webhook.ofSubject(d).some((e) => e.type === 'vigil.alert.raised')), 30_000);
  await publishAll(90);
  await until('every cleared at the webhook', () => devices.every((d) => webhook.ofSubject(d).some((e) => e.type === 'vigil.alert.cleared')), 30_000);
  await until('every clear at Alertmanager', () => devices.every((d) => alertmanager.ofDevice(d).some((a) => a.endsAt !== undefined)), 30_000);

  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  await until('outbox drained', async () => Number((await sql`select count(*) as n from notification_outbox`)[0]!.n) === 0);
  await sql.end();
  // Drained: nothing more can come. Each id once, each device's two events in order.
  expect(webhook.deliveries).toHaveLength(devices.length * 2);
  expect(new Set(webhook.deliveries.map((d) => d.id)).size).toBe(devices.length * 2);
  for (const d of devices) {
    expect(webhook.ofSubject(d).map((e) => e.type)).toEqual(['vigil.alert.raised', 'vigil.alert.cleared']);
    expect(alertmanager.ofDevice(d).map((a) => a.endsAt === undefined)).toEqual([true, false]);
  }
  expect(webhook.badSignatures).toBe(0);
  // Deliveries counted across instances add up (no instance counted one another made), and claims were shared.
  const delivered = await Promise.all(
    hubs.map(async (h) => {
      const text = await (await fetch(`http://127.0.0.1:${h.port}/metrics`)).text();
      return Number(new RegExp(`^vigil_notifications_total\\{sink="${wh}",outcome="delivered"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    }),
  );
  expect(delivered.reduce((a, b) => a + b, 0)).toBe(devices.length * 2);
  expect(delivered.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  await client.endAsync();
}, 120_000);
