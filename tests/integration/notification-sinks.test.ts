import { connectAsync, type MqttClient } from 'mqtt';
import postgres from 'postgres';
import { afterAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { sinkId } from '../../src/notify/sink.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { httpUrl, startHubWithEnv, testHubEnv } from '../helpers/hub.js';
import { WebhookReceiver, until } from '../helpers/notification-receivers.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { letTimePass } from '../helpers/wait.js';

/*
 * A sink is its URL, not its place in ALERT_WEBHOOK_URL: when the list changes from `A,B` to `B`,
 * A's pending events go to no one else (signed, to B, they did before) — they wait, visible over
 * REST, for NOTIFY_REMOVED_SINK_GRACE_S, then go dead counted as `sink_removed`. Rows stored by a hub
 * that named sinks by position (`webhook-N`) are taken as the N-th URL of the list at the upgrade.
 * Real hubs on the local PostgreSQL and Mosquitto, real HTTP receivers.
 */
const SECRET = 'sinks-webhook-secret-0123456789';
const databases = freshDatabases();
const hubs: RunningHub[] = [];
const clients: MqttClient[] = [];
const receivers: WebhookReceiver[] = [];
const sqls: postgres.Sql[] = [];

afterAll(async () => {
  for (const c of clients) await c.endAsync();
  for (const h of hubs) await h.stop();
  for (const r of receivers) await r.down();
  for (const s of sqls) await s.end();
  await databases.dropAll();
});

interface SinkRow {
  readonly sink: string;
  readonly target: string | null;
  readonly configured: boolean;
  readonly pending: number;
  readonly dead: number;
}
interface DeadRow {
  readonly id: string;
  readonly sink: string;
  readonly last_error: string;
}
const outboxOf = async (hub: RunningHub) => (await (await fetch(httpUrl(hub, '/admin/notifications'))).json()) as { sinks: SinkRow[]; dead: DeadRow[] };
const metricsOf = async (hub: RunningHub) => (await fetch(httpUrl(hub, '/metrics'))).text();

async function receiver(): Promise<WebhookReceiver> {
  const r = new WebhookReceiver(SECRET);
  await r.up();
  receivers.push(r);
  return r;
}

async function start(env: Record<string, string>): Promise<RunningHub> {
  const hub = await startHubWithEnv(env);
  hubs.push(hub);
  return hub;
}

async function stop(hub: RunningHub): Promise<void> {
  await hub.stop();
  hubs.splice(hubs.indexOf(hub), 1);
}

it('keeps a removed URL\'s pending events from every other receiver: pending for the grace, then dead as sink_removed', async () => {
  const a = await receiver();
  const b = await receiver();
  a.failWith = 503; // A is failing: its event stays pending, retried
  const urlA = `${a.url}/in?token=team-a`;
  const urlB = `${b.url}/in?token=team-b`;
  const database = await databases.create();
  const sql = postgres(database, { max: 1, onnotice: () => undefined });
  sqls.push(sql);
  const base: Record<string, string> = { ...testHubEnv('services'), DATABASE_URL: database, ALERT_WEBHOOK_SECRET: SECRET, NOTIFY_POLL_MS: '100', NOTIFY_RETRY_BASE_MS: '100', NOTIFY_RETRY_MAX_MS: '200' };
  const [idA, idB] = [sinkId('webhook', urlA), sinkId('webhook', urlB)];
  expect(idA).not.toBe(idB);

  const first = await start({ ...base, ALERT_WEBHOOK_URL: `${urlA},${urlB}` });
  const device = `bat-${randomSuffix()}`;
  const client = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${randomSuffix()}`, reconnectPeriod: 0 });
  clients.push(client);
  await client.publishAsync(`${base.MQTT_TOPIC_PREFIX!}/${device}/telemetry`, JSON.stringify({ battery_level: 10 }), { qos: 1 });
  await until('raised delivered to B', () => b.ofSubject(device).length === 1);
  const raisedId = b.ofSubject(device)[0]!.id;
  await until('raised tried and failed at A', async () => (await sql<{ attempts: number }[]>`select attempts from notification_outbox where sink = ${idA} and state = 'pending'`)[0]?.attempts! >= 2);
  await stop(first);

  // A leaves the list (B is now its first and only entry), and A would answer again: neither gets A's event.
  a.failWith = null;
  const requestsAtA = a.requests;
  const second = await start({ ...base, ALERT_WEBHOOK_URL: urlB, NOTIFY_REMOVED_SINK_GRACE_S: '3600' });
  await until('A\'s row shown as a removed sink', async () => (await outboxOf(second)).sinks.some((s) => s.sink === idA && !s.configured && s.pending === 1));
  const shown = await outboxOf(second);
  expect(shown.sinks).toEqual([
    { sink: idB, target: b.url, configured: true, pending: 0, dead: 0, oldest_pending_s: 0 },
    expect.objectContaining({ sink: idA, target: null, configured: false, pending: 1, dead: 0 }),
  ]);
  const [row] = await sql<{ attempts: number }[]>`select attempts from notification_outbox where sink = ${idA}`;
  await letTimePass(1500, 'fifteen polls: a removed sink\'s row must be claimed by none and sent nowhere');
  expect(b.count(raisedId)).toBe(1);
  expect(a.requests).toBe(requestsAtA);
  expect(await sql`select attempts, state from notification_outbox where sink = ${idA}`).toEqual([{ attempts: row!.attempts, state: 'pending' }]);
  // No metric series for a sink not configured (bounded labels), and none of its URL anywhere.
  const metrics = await metricsOf(second);
  expect(metrics).not.toContain(idA);
  expect(metrics).not.toContain('team-');
  expect(metrics).not.toMatch(/sink="webhook-\d+"/);
  // Its dead rows cannot be replayed onto nothing.
  const replay = await fetch(httpUrl(second, '/admin/notifications/replay'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sink: idA }) });
  expect(replay.status).toBe(409);
  await stop(second);

  // The grace over (0 here): dead, counted, visible over REST like other dead rows; B still got it once.
  const third = await start({ ...base, ALERT_WEBHOOK_URL: urlB, NOTIFY_REMOVED_SINK_GRACE_S: '0' });
  await until('A\'s row dead as sink_removed', async () => (await outboxOf(third)).dead.some((d) => d.sink === idA && d.id === raisedId));
  expect((await outboxOf(third)).dead.find((d) => d.sink === idA)!.last_error).toMatch(/^sink_removed/);
  await until('counted', async () => new RegExp(`^vigil_notifications_total\\{sink="${idA}",outcome="sink_removed"\\} 1$`, 'm').test(await metricsOf(third)));
  expect(b.count(raisedId)).toBe(1);
  expect(a.requests).toBe(requestsAtA);
  expect(b.badSignatures + a.badSignatures).toBe(0);
}, 90_000);

it('takes rows stored under names by position (webhook-N, before the upgrade) as the N-th URL of the list it starts with', async () => {
  const a = await receiver();
  const b = await receiver();
  const database = await databases.create();
  const sql = postgres(database, { max: 1, onnotice: () => undefined });
  sqls.push(sql);
  const base = { ...testHubEnv('services'), DATABASE_URL: database, ALERT_WEBHOOK_SECRET: SECRET, NOTIFY_POLL_MS: '100' };
  // The schema, then what a hub of the previous version left: pending rows of webhook-1, -2 and -3, a dead one of webhook-1.
  await stop(await start(base));
  const event = (id: string) => ({ specversion: '1.0', id, source: 'urn:vigil:hub', type: 'vigil.alert.raised', subject: `legacy-${id}`, time: new Date().toISOString(), datacontenttype: 'application/json', data: { alert_id: id } });
  const urlB = `${b.url}/first`;
  const urlA = `${a.url}/second`;
  // e6 is there under both names (as after an old-version instance wrote it during a rolling upgrade): one delivery.
  for (const [sink, id, state] of [['webhook-1', 'e1', 'pending'], ['webhook-2', 'e2', 'pending'], ['webhook-3', 'e3', 'pending'], ['webhook-1', 'e4', 'dead'], ['webhook-1', 'e6', 'pending'], [sinkId('webhook', urlB), 'e6', 'pending']] as const) {
    await sql`insert into notification_outbox (id, sink, subject, type, event, state) values (${id}, ${sink}, ${`legacy-${id}`}, 'vigil.alert.raised', ${sql.json(event(id))}, ${state})`;
  }

  const hub = await start({ ...base, ALERT_WEBHOOK_URL: `${urlB},${urlA}` });
  await until('e1 and e6 at the first URL, e2 at the second', () => b.count('e1') === 1 && b.count('e6') === 1 && a.count('e2') === 1);
  const outbox = await outboxOf(hub);
  // webhook-3 has no URL at that position: a removed sink's row (not sent anywhere, grace then dead).
  expect(outbox.sinks.find((s) => s.sink === 'webhook-3')).toMatchObject({ configured: false, pending: 1 });
  // The dead row keeps its state under the new name, so it can be replayed by it.
  expect(outbox.dead).toEqual([expect.objectContaining({ id: 'e4', sink: sinkId('webhook', urlB) })]);
  const replay = await fetch(httpUrl(hub, '/admin/notifications/replay'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sink: sinkId('webhook', urlB) }) });
  expect(await replay.json()).toEqual({ replayed: 1 });
  await until('e4 replayed to the first URL', () => b.count('e4') === 1);
  await letTimePass(500, 'a few polls: nothing else arrives');
  expect(b.deliveries.map((d) => d.id).sort()).toEqual(['e1', 'e4', 'e6']);
  expect(a.deliveries.map((d) => d.id)).toEqual(['e2']);
  expect(await sql`select sink from notification_outbox where sink like 'webhook-_'`).toEqual([{ sink: 'webhook-3' }]);
}, 90_000);
