import postgres from 'postgres';
import { afterAll, expect, inject, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { TestBroker } from '../helpers/mosquitto-service.js';
import { randomSuffix } from '../helpers/services.js';
import { steadyPublisher } from '../helpers/steady-publisher.js';
import { TestClient } from '../helpers/ws-client.js';
import { recordFault } from './fault-report.js';

let hub: RunningHub | undefined;
const broker = new TestBroker(21_000 + Math.floor(Math.random() * 9000));
afterAll(async () => {
  await hub?.stop();
  await broker.stop();
});

it('Mosquitto restarted under load: the hub reconnects with backoff, resumes its session, and stores every message once', async () => {
  await broker.start();
  hub = await startTestHub('services', { MQTT_URL: broker.url, MQTT_CLEAN_SESSION: 'false', MQTT_SESSION_EXPIRY_S: '300', OFFLINE_TIMEOUT_S: '30' });
  const run = randomSuffix();
  const devices = Array.from({ length: 10 }, (_, i) => `${run}-d${i}`);
  const watcher = await TestClient.connect(wsUrl(hub));
  await watcher.request({ type: 'subscribe_all' }, 1);
  for (const [i, d] of devices.entries()) await watcher.request({ type: 'subscribe_device', device_id: d }, i + 2);
  const total = 2000;
  const publisher = await steadyPublisher({ prefix: hub.config.MQTT_TOPIC_PREFIX, devices, total, ratePerS: 200, url: broker.url });

  await new Promise((r) => setTimeout(r, 2000));
  await broker.stop();
  await new Promise((r) => setTimeout(r, 500));
  const ready = await fetch(httpUrl(hub, '/readyz'));
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { failing: string[] }).failing).toContain('broker');
  await new Promise((r) => setTimeout(r, 2500));
  await broker.start();
  const backAt = Date.now();
  while ((await fetch(httpUrl(hub, '/readyz'))).status !== 200) {
    if (Date.now() - backAt > 30_000) throw new Error('hub did not reconnect within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const recoveryMs = Date.now() - backAt;
  await publisher.done;

  const sql = postgres(inject('postgresUrl'), { max: 1, onnotice: () => undefined });
  try {
    let stored = { rows: 0, distinct: 0 };
    const until = Date.now() + 20_000;
    while (Date.now() < until) {
      [stored = stored] = await sql<{ rows: number; distinct: number }[]>`
        select count(*)::int as rows, count(distinct (device_id, ts))::int as distinct from telemetry where device_id like ${`${run}-%`}`;
      if (stored.rows >= total) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // (Each change comes on the device channel and on `*`: count each seq once.)
    const transitions = [...new Map(watcher.ofType('status_change').filter((f) => devices.includes(f.device_id as string)).map((f) => [`${f.device_id}:${f.seq}`, f])).values()];
    const pushed = watcher.ofType('device_update').length; // device channel only
    recordFault({
      fault: 'Mosquitto (shipped config) stopped ~3 s, restarted',
      accepted: publisher.accepted,
      stored: stored.rows,
      duplicates: stored.rows - stored.distinct,
      pushed,
      transitionsExpected: devices.length,
      transitionsSeen: transitions.length,
      recoveryMs,
      note: 'hub back on its persistent session; publisher resent what the broker had not acknowledged',
    });
    expect(publisher.accepted).toBe(total);
    expect(stored).toEqual({ rows: total, distinct: total });
    // Online once each; the outage is shorter than the timeout, so no false offline.
    expect(transitions.map((t) => t.status)).toEqual(devices.map(() => 'online'));
    expect(pushed).toBeGreaterThanOrEqual(total); // redelivered messages are pushed again (stored once)
  } finally {
    await sql.end();
    watcher.close();
  }
}, 90_000);
