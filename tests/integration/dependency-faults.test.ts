import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';
import { letTimePass } from '../helpers/wait.js';

/**
 * Each dependency fails mid-operation (its connections dropped, new ones refused, through a proxy in
 * front of the real service) while every entry of a hub process is driven: MQTT messages of each
 * kind, every WebSocket message type, REST (DELETE /devices/{id} among them), and the timers. The
 * hub must stay up and answering, count what it caught, and show no secret it was given anywhere.
 */

const SECRETS = {
  redis: `redis-pw-${randomSuffix()}`,
  postgres: `pg-pw-${randomSuffix()}`,
  mqtt: `mqtt-pw-${randomSuffix()}`,
  wsToken: `ws-token-secret-${randomSuffix()}-${'x'.repeat(24)}`,
};

const databases = freshDatabases();
const proxies: Record<'redis' | 'postgres' | 'broker', FaultProxy> = {} as never;
const prefix = `t${randomSuffix()}/devices`;
let hub: HubProcess;
let device: MqttClient;
let steady: TestClient;
/** Every HTTP body and WebSocket frame the hub sent during the test: none may hold a secret. */
const answers: string[] = [];

const url = (path: string) => `http://127.0.0.1:${hub.port}${path}`;

async function call(path: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const started = Date.now();
  const response = await fetch(url(path), { ...init, headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string>) }, signal: AbortSignal.timeout(45_000) }).catch((error: Error) => {
    throw new Error(`${init.method ?? 'GET'} ${path}: ${error.message} after ${Date.now() - started} ms`);
  });
  const body = await response.text();
  answers.push(body);
  return { status: response.status, body };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `vigil_internal_errors_total` by entry, from the hub's /metrics. */
async function internalErrors(): Promise<Record<string, number>> {
  const { body } = await call('/metrics');
  const counts: Record<string, number> = {};
  for (const match of body.matchAll(/^vigil_internal_errors_total\{entry="([a-z_]+)"\} (\d+)/gm)) counts[match[1]!] = Number(match[2]);
  return counts;
}

function expectAlive(): void {
  expect(hub.child.exitCode, `hub exited; last log lines:\n${hub.logs.slice(-15).join('\n')}`).toBeNull();
  expect(hub.child.signalCode).toBeNull();
}

/** A 500 says "internal" and the request id, nothing of the driver's error. */
function expectNoInternals(answer: { status: number; body: string }): void {
  if (answer.status !== 500) return;
  const body = JSON.parse(answer.body) as { detail: string; error: { code: string; message: string; request_id: string } };
  expect(body).toEqual({ detail: 'internal error', error: { code: 'internal', message: 'internal error', request_id: expect.any(String) } });
}

/** Publishes one message of every kind the hub subscribes to. */
async function publishEveryKind(deviceId: string): Promise<void> {
  await device.publishAsync(`${prefix}/${deviceId}/telemetry`, JSON.stringify({ battery_level: 50, rssi: -60, metrics: { t: 1 } }), { qos: 1 });
  await device.publishAsync(`${prefix}/${deviceId}/heartbeat`, '', { qos: 1 });
  await device.publishAsync(`${prefix}/${deviceId}/status`, 'online', { qos: 1 });
  await device.publishAsync(`${prefix}/${deviceId}/commands/ack`, JSON.stringify({ command_id: randomUUID(), status: 'succeeded' }), { qos: 1 });
  await device.publishAsync(`${prefix}/${deviceId}/telemetry`, '{"not": valid', { qos: 1 });
}

/** Sends every client message type on `client` and expects each to be answered. */
async function everyWsMessage(client: TestClient, deviceId: string): Promise<void> {
  const requests: Record<string, unknown>[] = [
    { type: 'ping' },
    { type: 'subscribe_device', device_id: deviceId },
    { type: 'subscribe_device', device_id: deviceId, resume: { since_seq: 1, epoch: 'old-epoch' } },
    { type: 'unsubscribe_device', device_id: deviceId },
    { type: 'subscribe_all' },
    { type: 'unsubscribe_all' },
    { type: 'ack_alert', alert_id: randomUUID() },
    { type: 'no_such_type' },
  ];
  let id = 1000 + Math.floor(Math.random() * 100_000);
  for (const message of requests) {
    const answer = await client.request(message, ++id);
    expect(['ack', 'pong', 'error'], JSON.stringify(answer)).toContain(answer.type);
  }
  client.send('{"not json');
  client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
  expect((await client.request({ type: 'ping' }, ++id)).type).toBe('pong');
}

/** Drives every entry once; `phase` keeps device ids apart. */
async function driveEveryEntry(phase: string): Promise<void> {
  const deviceId = `${phase}-${randomSuffix()}`;
  await publishEveryKind(deviceId);
  await publishEveryKind(`known-${phase}`);
  // An existing connection and one opened during the fault (its open handler runs now).
  await everyWsMessage(steady, deviceId);
  const fresh = await TestClient.connect(`ws://127.0.0.1:${hub.port}/ws`);
  fresh.socket.on('message', (data) => answers.push(data.toString()));
  await everyWsMessage(fresh, deviceId);
  const badAuth = await TestClient.connect(`ws://127.0.0.1:${hub.port}/ws`);
  badAuth.send({ type: 'auth', id: 1, token: 'vgl_not_a_key' });
  expect(await badAuth.waitClose()).toBe(4401);
  fresh.close();

  for (const [method, path, body] of [
    ['GET', '/healthz'],
    ['GET', '/readyz'],
    ['GET', `/status/known-${phase}`],
    ['GET', '/status/summary'],
    ['GET', `/devices/known-${phase}/health`],
    ['GET', `/devices/known-${phase}/metrics?hours=1`],
    ['GET', `/status/known-${phase}/history`],
    ['POST', '/status', { device_id: `rest-${phase}`, battery_level: 40 }],
    ['POST', `/devices/known-${phase}/commands`, { command: 'reboot', params: {} }],
    ['GET', '/alerts'],
    ['DELETE', `/devices/known-${phase}`],
  ] as const) {
    const answer = await call(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    expect(answer.status, `${method} ${path}: ${answer.body}`).toBeLessThan(600);
    expectNoInternals(answer);
    expectAlive();
  }
  // Timers: presence sweeps and expiries (1 s timeout), offline checks, the health and retention crons (every second).
  await letTimePass(1500, 'the timers fire while the dependency is away');
  expectAlive();
  expect((await call('/healthz')).status).toBe(200);
}

beforeAll(async () => {
  proxies.redis = await FaultProxy.start(Number(new URL(SERVICES.redisUrl).port || 6379));
  const database = new URL(await databases.create());
  proxies.postgres = await FaultProxy.start(Number(database.port || 5432));
  proxies.broker = await FaultProxy.start(Number(new URL(SERVICES.mqttUrl).port || 1883));
  database.port = String(proxies.postgres.port);
  database.password = SECRETS.postgres; // trust authentication: accepted, and it must never show
  hub = await spawnHub({
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'vigil-faults-')),
    MQTT_URL: `mqtt://127.0.0.1:${proxies.broker.port}`,
    MQTT_USERNAME: 'vigil',
    MQTT_PASSWORD: SECRETS.mqtt,
    MQTT_TOPIC_PREFIX: prefix,
    MQTT_CLIENT_ID: `vigil-test-${randomSuffix()}`,
    MQTT_CLEAN_SESSION: 'true',
    REDIS_URL: `redis://:${SECRETS.redis}@127.0.0.1:${proxies.redis.port}/0`,
    REDIS_KEY_PREFIX: `vigil-test:${randomSuffix()}:`,
    DATABASE_URL: database.toString(),
    WS_TOKEN_SECRET: SECRETS.wsToken,
    OFFLINE_TIMEOUT_S: '1',
    PRESENCE_SWEEP_MS: '100',
    OFFLINE_ALERT_CHECK_S: '0.2',
    OFFLINE_ALERT_MINUTES: '0',
    HEALTH_SWEEP_CRON: '* * * * * *',
    RETENTION_CRON: '* * * * * *',
    HTTP_RATE_PER_S: '10000',
    HTTP_RATE_BURST: '10000',
  });
  device = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${randomSuffix()}`, clean: true });
  steady = await TestClient.connect(`ws://127.0.0.1:${hub.port}/ws`);
  steady.socket.on('message', (data) => answers.push(data.toString()));
  await waitFor(async () => (await call('/readyz')).status === 200, 20_000, 'hub ready');
}, 60_000);

afterAll(async () => {
  steady?.close();
  await device?.endAsync();
  await hub?.stop();
  for (const proxy of Object.values(proxies)) await proxy.close();
  await databases.dropAll();
});

describe('a dependency failing mid-operation on every entry', () => {
  it('the hub answers normally with every dependency up', async () => {
    await driveEveryEntry('baseline');
    expectAlive();
  });

  for (const dependency of ['redis', 'postgres', 'broker'] as const) {
    it(`survives ${dependency} failing, counts what it caught, and recovers`, async () => {
      // Devices known (and online) before the fault, so the fault meets claims, expiries and deletes.
      await publishEveryKind(`known-${dependency}`);
      await waitFor(async () => (await call(`/status/known-${dependency}`)).status === 200, 10_000, 'device known');
      proxies[dependency].cut();
      try {
        await driveEveryEntry(dependency);
        if (dependency === 'postgres') {
          // The key reload (every 5 s) meets the outage too: reported, not swallowed.
          await waitFor(async () => ((await internalErrors()).key_reload ?? 0) > 0, 15_000, 'key reload failure counted');
        }
        if (dependency === 'redis') {
          // The DELETE's presence claim failed (it ended the process before the boundaries): counted.
          await waitFor(async () => ((await internalErrors()).presence ?? 0) > 0, 10_000, 'presence failure counted');
        }
        expectAlive();
      } finally {
        proxies[dependency].restore();
      }
      await waitFor(async () => (await call('/readyz')).status === 200, 40_000, `ready again after ${dependency}`);
      await driveEveryEntry(`after-${dependency}`);
      expectAlive();
    }, 120_000);
  }

  it('reached no last-resort handler: every fault was caught at its own entry', async () => {
    const counts = await internalErrors();
    expect(counts.process ?? 0, hub.logs.filter((l) => l.includes('"entry":"process"')).join('\n')).toBe(0);
    expect(Object.keys(counts).length).toBeGreaterThan(0);
  });

  it('never shows a secret it was given: not in logs, stderr, bodies or frames', () => {
    const everything = [...hub.logs, ...answers].join('\n');
    for (const secret of Object.values(SECRETS)) expect(everything).not.toContain(secret);
    // The failures were logged (rate-limited), with URLs redacted.
    expect(hub.logs.some((l) => l.includes('internal error in'))).toBe(true);
  });
});
