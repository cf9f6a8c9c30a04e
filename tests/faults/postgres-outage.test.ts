import postgres from 'postgres';
import { afterAll, expect, inject, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { httpUrl, startTestHub } from '../helpers/hub.js';
import { startPostgres, stopPostgres } from '../helpers/postgres-service.js';
import { randomSuffix } from '../helpers/services.js';
import { steadyPublisher } from '../helpers/steady-publisher.js';
import { TestBroker } from '../helpers/mosquitto-service.js';
import { recordFault } from './fault-report.js';

/** How long PostgreSQL stays down (FAULT_PG_OUTAGE_S; 30 s by default, as the reliability issue asks). */
const OUTAGE_MS = Number(process.env.FAULT_PG_OUTAGE_S ?? 30) * 1000;

let hub: RunningHub | undefined;
// The outage's backlog waits at the broker (acknowledgements wait for storage): run the broker with
// the settings Vigil ships, whose session queue is sized for it (stock Mosquitto keeps 1,000).
const broker = new TestBroker(21_000 + Math.floor(Math.random() * 9000));
afterAll(async () => {
  await startPostgres(); // whatever happened, leave PostgreSQL running for the rest of the suite
  await hub?.stop();
  await broker.stop();
});

it('PostgreSQL stopped while telemetry flows: the writer backs off, catches up, and stores every message once', async () => {
  await broker.start();
  hub = await startTestHub('services', { MQTT_URL: broker.url, MQTT_CLEAN_SESSION: 'false', MQTT_SESSION_EXPIRY_S: '300' });
  const run = randomSuffix();
  const ratePerS = 100;
  const total = Math.round(((OUTAGE_MS + 6000) / 1000) * ratePerS);
  const publisher = await steadyPublisher({
    prefix: hub.config.MQTT_TOPIC_PREFIX,
    devices: Array.from({ length: 10 }, (_, i) => `${run}-d${i}`),
    total,
    ratePerS,
    url: broker.url,
  });
  await new Promise((r) => setTimeout(r, 1500));
  stopPostgres();
  const outageStarted = Date.now();
  await new Promise((r) => setTimeout(r, 1000));
  const ready = await fetch(httpUrl(hub, '/readyz'));
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { failing: string[] }).failing).toContain('storage');
  await new Promise((r) => setTimeout(r, OUTAGE_MS - 1000));
  await startPostgres();
  const outageMs = Date.now() - outageStarted;
  const backAt = Date.now();
  await publisher.done;

  const sql = postgres(inject('postgresUrl'), { max: 1, onnotice: () => undefined });
  try {
    let stored = { rows: 0, distinct: 0 };
    let caughtUpMs = 0;
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      [stored = stored] = await sql<{ rows: number; distinct: number }[]>`
        select count(*)::int as rows, count(distinct (device_id, ts))::int as distinct from telemetry where device_id like ${`${run}-%`}`;
      if (caughtUpMs === 0 && (await fetch(httpUrl(hub, '/readyz'))).status === 200) caughtUpMs = Date.now() - backAt;
      if (stored.rows >= total) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const metrics = await (await fetch(httpUrl(hub, '/metrics'))).text();
    const retries = /vigil_writer_retries_total (\d+)/.exec(metrics)?.[1];
    recordFault({
      fault: `PostgreSQL stopped ${Math.round(outageMs / 1000)} s`,
      accepted: publisher.accepted,
      stored: stored.rows,
      duplicates: stored.rows - stored.distinct,
      recoveryMs: caughtUpMs,
      note: `writer retried ${retries} times; ${ratePerS} msg/s throughout`,
    });
    expect(stored).toEqual({ rows: total, distinct: total });
    expect(Number(retries)).toBeGreaterThan(0);
  } finally {
    await sql.end();
  }
}, OUTAGE_MS + 60_000);
