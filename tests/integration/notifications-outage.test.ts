import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import postgres from 'postgres';
import { afterAll, expect, it } from 'vitest';
import { freshDatabases } from '../helpers/fresh-database.js';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { AlertmanagerReceiver, WebhookReceiver, until } from '../helpers/notification-receivers.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { sinkId } from '../../src/notify/sink.js';

/*
 * Both receivers are down for 30 s, and the hub process is stopped and started again on the same
 * database meanwhile: the low battery episode's raised (stored by the first process) and cleared
 * (by the second) still reach both receivers, once each, in order, once they are back.
 */
const SECRET = 'outage-webhook-secret-0123456789';
const OUTAGE_MS = 30_000;
/** In the webhook URL's query, as many services put theirs: it must never reach a log line. */
const URL_TOKEN = 'url-token-never-logged-5f3a';
const databases = freshDatabases();
const hubs: HubProcess[] = [];
const webhook = new WebhookReceiver(SECRET);
const alertmanager = new AlertmanagerReceiver();
let sql: postgres.Sql | null = null;

afterAll(async () => {
  for (const h of hubs) await h.stop();
  await webhook.down();
  await alertmanager.down();
  await sql?.end();
  await databases.dropAll();
});

interface OutboxRow {
  sink: string;
  type: string;
  attempts: number;
  state: string;
}

it('loses nothing while the receivers are down for 30 s and the hub restarts meanwhile', async () => {
  await webhook.up();
  await alertmanager.up();
  await webhook.down();
  await alertmanager.down();
  const downAt = Date.now();
  const url = await databases.create();
  sql = postgres(url, { max: 1, onnotice: () => undefined });
  const outbox = () => sql!<OutboxRow[]>`select sink, type, attempts, state from notification_outbox order by seq`;
  const run = randomSuffix();
  const prefix = `o${run}/devices`;
  const env = {
    MQTT_URL: SERVICES.mqttUrl,
    MQTT_TOPIC_PREFIX: prefix,
    MQTT_CLIENT_ID: `vigil-outage-${run}`,
    MQTT_CLEAN_SESSION: 'true',
    DATABASE_URL: url,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'vigil-outage-')),
    PORT: '0',
    ALERT_WEBHOOK_URL: `${webhook.url}/in?token=${URL_TOKEN}`,
    ALERT_WEBHOOK_SECRET: SECRET,
    ALERTMANAGER_URL: alertmanager.url,
    ALERTMANAGER_RESEND_S: '3600',
    NOTIFY_POLL_MS: '200',
    NOTIFY_RETRY_BASE_MS: '500',
    NOTIFY_RETRY_MAX_MS: '4000',
  };
  const wh = sinkId('webhook', env.ALERT_WEBHOOK_URL);
  const device = `bat-${run}`;
  const client = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${run}`, reconnectPeriod: 0 });
  const publish = (battery: number) => client.publishAsync(`${prefix}/${device}/telemetry`, JSON.stringify({ battery_level: battery }), { qos: 1 });

  const first = await spawnHub(env);
  hubs.push(first);
  await publish(10);
  await until('raised tried at both sinks', async () => {
    const rows = await outbox();
    return rows.length === 2 && rows.every((r) => r.type === 'vigil.alert.raised' && r.attempts >= 1 && r.state === 'pending');
  });
  expect(await first.stop()).toBe(0);

  const second = await spawnHub(env);
  hubs.push(second);
  await publish(90);
  await until('cleared stored for both sinks', async () => (await outbox()).filter((r) => r.type === 'vigil.alert.cleared').length === 2);
  // The depth gauge is read from the database every NOTIFY_POLL_MS: wait for the read after the clear.
  let metrics = '';
  await until('the outbox depth read after the clear', async () => {
    metrics = await (await fetch(`http://127.0.0.1:${second.port}/metrics`)).text();
    return new RegExp(`^vigil_notification_outbox_depth\\{sink="${wh}"\\} 2$`, 'm').test(metrics);
  });
  expect(metrics).toMatch(new RegExp(`^vigil_notification_outbox_depth\\{sink="${wh}"\\} 2$`, 'm'));
  expect(metrics).toMatch(new RegExp(`^vigil_notifications_total\\{sink="${wh}",outcome="retried"\\} [1-9]`, 'm'));

  // The outage lasts its full 30 s; nothing may have arrived meanwhile.
  await until('the end of the outage', () => Date.now() - downAt >= OUTAGE_MS, OUTAGE_MS + 5000);
  expect(webhook.requests + alertmanager.requests).toBe(0);
  await webhook.up();
  await alertmanager.up();

  await until('both events at the webhook', () => webhook.ofSubject(device).length >= 2, 20_000);
  await until('both events at Alertmanager', () => alertmanager.ofDevice(device).length >= 2, 20_000);
  await until('outbox drained', async () => (await outbox()).length === 0);
  const events = webhook.ofSubject(device);
  expect(events.map((e) => e.type)).toEqual(['vigil.alert.raised', 'vigil.alert.cleared']);
  const alertId = String(events[0]!.data.alert_id);
  expect(events.map((e) => e.id)).toEqual([`${alertId}:raised`, `${alertId}:cleared`]);
  expect(webhook.badSignatures).toBe(0);
  const posted = alertmanager.ofDevice(device);
  expect(posted).toHaveLength(2);
  expect(posted[0]!.endsAt).toBeUndefined();
  expect(posted[1]!.endsAt).toBe(events[1]!.data.cleared_at);
  expect(posted[1]!.labels).toEqual(posted[0]!.labels);
  const logs = [...first.logs, ...second.logs];
  expect(logs.some((l) => l.includes('notification delivery failed'))).toBe(true);
  expect(logs.filter((l) => l.includes(URL_TOKEN) || l.includes(SECRET))).toEqual([]);
  await client.endAsync();
}, 90_000);
