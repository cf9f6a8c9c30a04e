import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { httpUrl, startHubWithEnv, testHubEnv } from '../helpers/hub.js';
import { AlertmanagerReceiver, WebhookReceiver, until } from '../helpers/notification-receivers.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { sinkId } from '../../src/notify/sink.js';

/*
 * A low battery episode over the real Mosquitto reaches a webhook (CloudEvents, signature checked
 * by the receiver) and an Alertmanager-compatible receiver: raised, acknowledged, cleared; the
 * active alert re-sent to Alertmanager; `endsAt` on clear. On PostgreSQL and on the embedded PGlite.
 */
const SECRET = 'test-webhook-secret-0123456789';
const databases = freshDatabases();
const hubs: RunningHub[] = [];
const clients: MqttClient[] = [];
const receivers: { down(): Promise<void> }[] = [];

afterAll(async () => {
  for (const c of clients) await c.endAsync();
  for (const h of hubs) await h.stop();
  for (const r of receivers) await r.down();
  await databases.dropAll();
});

async function metric(hub: RunningHub, line: RegExp): Promise<number | null> {
  const text = await (await fetch(httpUrl(hub, '/metrics'))).text();
  const match = line.exec(text);
  return match ? Number(match[1]) : null;
}

describe.each(['PostgreSQL', 'PGlite'] as const)('notifications of an alert episode (%s)', (storage) => {
  it('sends raised, acknowledged and cleared, signed, to the webhook and to Alertmanager (re-sent while active, endsAt on clear)', async () => {
    const webhook = new WebhookReceiver(SECRET);
    const alertmanager = new AlertmanagerReceiver();
    await webhook.up();
    await alertmanager.up();
    receivers.push(webhook, alertmanager);
    const prefix = `n${randomSuffix()}/devices`;
    const env: Record<string, string> = {
      ...testHubEnv(storage === 'PostgreSQL' ? 'services' : 'embedded'),
      MQTT_URL: SERVICES.mqttUrl,
      MQTT_TOPIC_PREFIX: prefix,
      ALERT_WEBHOOK_URL: `${webhook.url}/hooks/vigil?token=abc`,
      ALERT_WEBHOOK_SECRET: SECRET,
      ALERTMANAGER_URL: `${alertmanager.url}/`,
      ALERTMANAGER_RESEND_S: '5',
      PUBLIC_URL: 'https://vigil.example.com/',
      NOTIFY_POLL_MS: '100',
      // Status changes too, filtered to "online" (the device never goes offline here; the filter is exercised).
      ALERT_WEBHOOK_DEVICE_STATUS: 'true',
      ALERT_WEBHOOK_TYPES: 'vigil.alert.*,vigil.device.online',
    };
    if (storage === 'PostgreSQL') env.DATABASE_URL = await databases.create();
    const wh = sinkId('webhook', env.ALERT_WEBHOOK_URL!);
    const am = sinkId('alertmanager', env.ALERTMANAGER_URL!);
    const hub = await startHubWithEnv(env);
    hubs.push(hub);
    const device = `bat-${randomSuffix()}`;
    const client = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${randomSuffix()}`, reconnectPeriod: 0 });
    clients.push(client);
    await client.publishAsync(`${prefix}/${device}/telemetry`, JSON.stringify({ battery_level: 10 }), { qos: 1 });

    await until('raised at the webhook', () => webhook.ofSubject(device).some((d) => d.type === 'vigil.alert.raised'));
    const raised = webhook.ofSubject(device).find((d) => d.type === 'vigil.alert.raised')!;
    expect(raised.contentType).toMatch(/^application\/cloudevents\+json/);
    expect(raised.event).toMatchObject({ specversion: '1.0', source: 'https://vigil.example.com', type: 'vigil.alert.raised', subject: device, datacontenttype: 'application/json' });
    expect(raised.data).toMatchObject({ device_id: device, anomaly_type: 'low_battery', severity: 'minor', state: 'raised', dashboard_url: `https://vigil.example.com/#/device/${device}` });
    const alertId = String(raised.data.alert_id);
    expect(raised.id).toBe(`${alertId}:raised`);
    await until('raised at Alertmanager', () => alertmanager.ofDevice(device).length > 0);
    const first = alertmanager.ofDevice(device)[0]!;
    expect(first.labels).toEqual({ alertname: 'low_battery', device_id: device, severity: 'minor' });
    expect(first.annotations).toMatchObject({ value: '10', threshold: '20', metric: 'battery_level', alert_id: alertId });
    expect(first.annotations.summary).toContain(device);
    expect(first.generatorURL).toBe(`https://vigil.example.com/#/device/${device}`);
    expect(first.endsAt).toBeUndefined();
    expect(Date.parse(first.startsAt)).toBe(Date.parse(String(raised.data.raised_at)));

    // Acknowledged over REST (loopback, no key exists): an event of its own.
    const ack = await fetch(httpUrl(hub, `/alerts/${alertId}/ack`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by: 'alice' }) });
    expect(ack.status).toBe(200);
    await until('acknowledged at the webhook', () => webhook.count(`${alertId}:acknowledged`) === 1);
    // Active for a re-send round: Alertmanager hears of it again, same labels, still no endsAt.
    await until('re-sent to Alertmanager', () => alertmanager.ofDevice(device).filter((a) => a.endsAt === undefined).length >= 3, 15_000);
    expect(alertmanager.ofDevice(device).every((a) => a.labels.alertname === 'low_battery' && a.labels.severity === 'minor')).toBe(true);

    await client.publishAsync(`${prefix}/${device}/telemetry`, JSON.stringify({ battery_level: 90 }), { qos: 1 });
    await until('cleared at the webhook', () => webhook.count(`${alertId}:cleared`) === 1);
    await until('endsAt at Alertmanager', () => alertmanager.ofDevice(device).some((a) => a.endsAt !== undefined));
    const cleared = webhook.deliveries.find((d) => d.id === `${alertId}:cleared`)!;
    const ended = alertmanager.ofDevice(device).find((a) => a.endsAt !== undefined)!;
    expect(Date.parse(ended.endsAt!)).toBe(Date.parse(String(cleared.data.cleared_at)));
    expect(ended.annotations.acknowledged_by).toBe('alice');

    const types = webhook.ofSubject(device).map((d) => d.type);
    expect(types.filter((t) => t.startsWith('vigil.alert.'))).toEqual(['vigil.alert.raised', 'vigil.alert.acknowledged', 'vigil.alert.cleared']);
    expect(types.filter((t) => t === 'vigil.device.online')).toHaveLength(1);
    const online = webhook.ofSubject(device).find((d) => d.type === 'vigil.device.online')!;
    expect(online.data).toMatchObject({ device_id: device, status: 'online', reason: 'telemetry' });
    expect(webhook.badSignatures).toBe(0);
    expect(alertmanager.invalid).toBe(0);
    expect(await metric(hub, new RegExp(`^vigil_notifications_total\\{sink="${wh}",outcome="delivered"\\} (\\d+)`, 'm'))).toBe(4);
    expect(await metric(hub, new RegExp(`^vigil_notifications_total\\{sink="${am}",outcome="filtered"\\} (\\d+)`, 'm'))).toBe(1);
    expect(await metric(hub, new RegExp(`^vigil_notifications_total\\{sink="${am}",outcome="delivered"\\} (\\d+)`, 'm'))).toBe(3);
    expect(await metric(hub, new RegExp(`^vigil_notifications_total\\{sink="${am}",outcome="resent"\\} (\\d+)`, 'm'))).toBeGreaterThanOrEqual(1);
    await until('outbox empty', async () => (await metric(hub, new RegExp(`^vigil_notification_outbox_depth\\{sink="${wh}"\\} (\\d+)`, 'm'))) === 0);
  }, 60_000);
});

describe('a receiver that keeps failing', () => {
  it('gives up after NOTIFY_MAX_ATTEMPTS: dead, counted, visible over REST, replayable, and the device\'s later events flow again', async () => {
    const webhook = new WebhookReceiver(SECRET);
    await webhook.up();
    receivers.push(webhook);
    webhook.failWith = 500;
    const prefix = `n${randomSuffix()}/devices`;
    const hub = await startHubWithEnv({
      ...testHubEnv('embedded'),
      MQTT_URL: SERVICES.mqttUrl,
      MQTT_TOPIC_PREFIX: prefix,
      ALERT_WEBHOOK_URL: webhook.url,
      ALERT_WEBHOOK_SECRET: SECRET,
      NOTIFY_POLL_MS: '100',
      NOTIFY_MAX_ATTEMPTS: '3',
      NOTIFY_RETRY_BASE_MS: '100',
    });
    hubs.push(hub);
    const wh = sinkId('webhook', webhook.url);
    const device = `bat-${randomSuffix()}`;
    const client = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${randomSuffix()}`, reconnectPeriod: 0 });
    clients.push(client);
    await client.publishAsync(`${prefix}/${device}/telemetry`, JSON.stringify({ battery_level: 10 }), { qos: 1 });
    await until('raised dead', async () => (await metric(hub, new RegExp(`^vigil_notifications_total\\{sink="${wh}",outcome="dead"\\} (\\d+)`, 'm'))) === 1);
    expect(webhook.requests).toBe(3);
    expect(await metric(hub, new RegExp(`^vigil_notifications_total\\{sink="${wh}",outcome="retried"\\} (\\d+)`, 'm'))).toBe(2);
    await until('dead gauge', async () => (await metric(hub, new RegExp(`^vigil_notification_outbox_dead\\{sink="${wh}"\\} (\\d+)`, 'm'))) === 1);
    expect(await metric(hub, new RegExp(`^vigil_notification_outbox_depth\\{sink="${wh}"\\} (\\d+)`, 'm'))).toBe(0);

    // Visible over REST (loopback, no key exists), and replayed once the receiver works again.
    const outbox = (await (await fetch(httpUrl(hub, '/admin/notifications'))).json()) as { sinks: unknown[]; dead: { type: string; attempts: number; last_error: string }[] };
    expect(outbox.sinks).toEqual([{ sink: wh, target: webhook.url, configured: true, pending: 0, dead: 1, oldest_pending_s: 0 }]);
    expect(outbox.dead).toMatchObject([{ type: 'vigil.alert.raised', attempts: 3, last_error: 'HTTP 500' }]);
    webhook.failWith = null;
    const replay = await fetch(httpUrl(hub, '/admin/notifications/replay'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sink: wh }) });
    expect(await replay.json()).toEqual({ replayed: 1 });
    await until('raised delivered on replay', () => webhook.ofSubject(device).some((d) => d.type === 'vigil.alert.raised'));

    // A dead event does not hold back the device's later ones.
    webhook.failWith = 500;
    await client.publishAsync(`${prefix}/${device}/telemetry`, JSON.stringify({ battery_level: 90 }), { qos: 1 });
    await until('cleared dead', async () => (await metric(hub, new RegExp(`^vigil_notifications_total\\{sink="${wh}",outcome="dead"\\} (\\d+)`, 'm'))) === 2);
    webhook.failWith = null;
    await client.publishAsync(`${prefix}/${device}/telemetry`, JSON.stringify({ battery_level: 10 }), { qos: 1 });
    await until('next raise delivered', () => webhook.ofSubject(device).filter((d) => d.type === 'vigil.alert.raised').length === 2);
    expect(webhook.ofSubject(device).map((d) => d.type)).toEqual(['vigil.alert.raised', 'vigil.alert.raised']);
  }, 60_000);
});

describe('an escalated alert at Alertmanager', () => {
  it('ends the label set it had (endsAt at the escalation) when its severity label rises, so no stale alert stays to resolve later', async () => {
    const alertmanager = new AlertmanagerReceiver();
    await alertmanager.up();
    receivers.push(alertmanager);
    const prefix = `n${randomSuffix()}/devices`;
    const hub = await startHubWithEnv({
      ...testHubEnv('embedded'),
      MQTT_URL: SERVICES.mqttUrl,
      MQTT_TOPIC_PREFIX: prefix,
      ALERTMANAGER_URL: alertmanager.url,
      ALERTMANAGER_RESEND_S: '3600', // the outbox's posts only
      NOTIFY_POLL_MS: '100',
      ALERT_RULES: JSON.stringify([{ type: 'thaw', metric: 'metrics.t', op: '>', raise: -10, severity: 'minor', escalation: [{ after_s: 1, severity: 'major' }, { after_s: 2, severity: 'critical' }] }]),
    });
    hubs.push(hub);
    const device = `frz-${randomSuffix()}`;
    const client = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${randomSuffix()}`, reconnectPeriod: 0 });
    clients.push(client);
    const publish = (t: number) => client.publishAsync(`${prefix}/${device}/telemetry`, JSON.stringify({ metrics: { t } }), { qos: 1 });
    const posted = (severity: string) => alertmanager.ofDevice(device).filter((a) => a.labels.alertname === 'thaw' && a.labels.severity === severity);
    await publish(0);
    await until('raised at Alertmanager (minor)', () => posted('minor').length > 0);
    // Held past each step: the next message escalates it, minor → major → critical.
    await until('escalated to critical', async () => {
      await publish(0);
      return posted('critical').length > 0;
    });
    // Each label set it left was ended at its escalation; the one it has now is open.
    for (const severity of ['minor', 'major']) {
      const ends = posted(severity).filter((a) => a.endsAt !== undefined);
      expect(ends, severity).toHaveLength(1);
      expect(ends[0]!.labels).toEqual({ alertname: 'thaw', device_id: device, severity });
      expect(Date.parse(ends[0]!.endsAt!)).toBeGreaterThan(Date.parse(ends[0]!.startsAt));
      expect(Date.parse(ends[0]!.endsAt!)).toBeLessThanOrEqual(Date.now());
    }
    expect(Date.parse(posted('minor').find((a) => a.endsAt)!.endsAt!)).toBeLessThanOrEqual(Date.parse(posted('major').find((a) => a.endsAt)!.endsAt!));
    expect(posted('critical').every((a) => a.endsAt === undefined)).toBe(true);
    // Cleared: the critical label set ends; every label set Alertmanager was told of is ended once.
    await publish(-20);
    await until('critical ended', () => posted('critical').some((a) => a.endsAt !== undefined));
    const open = new Set<string>();
    for (const a of alertmanager.ofDevice(device)) {
      const key = JSON.stringify(a.labels);
      if (a.endsAt === undefined) open.add(key);
      else open.delete(key);
    }
    expect([...open]).toEqual([]);
    expect(alertmanager.invalid).toBe(0);
  }, 60_000);
});
