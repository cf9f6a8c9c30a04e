import postgres from 'postgres';
import { afterAll, expect, inject, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { steadyPublisher } from '../helpers/steady-publisher.js';
import { recordFault } from './fault-report.js';

const hubs: HubProcess[] = [];
afterAll(async () => {
  await Promise.all(hubs.map((h) => h.stop()));
});

async function storedRows(run: string): Promise<{ rows: number; distinct: number }> {
  const sql = postgres(inject('postgresUrl'), { max: 1, onnotice: () => undefined });
  try {
    const [r] = await sql<{ rows: number; distinct: number }[]>`
      select count(*)::int as rows, count(distinct (device_id, ts))::int as distinct from telemetry where device_id like ${`${run}-%`}`;
    return r!;
  } finally {
    await sql.end();
  }
}

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  it(`a hub stopped with ${signal} mid-stream loses nothing: the broker redelivers what was not stored`, async () => {
    const run = randomSuffix();
    const env = {
      MQTT_URL: SERVICES.mqttUrl,
      REDIS_URL: SERVICES.redisUrl,
      DATABASE_URL: inject('postgresUrl'),
      REDIS_KEY_PREFIX: `vigil-test:${run}:`,
      MQTT_TOPIC_PREFIX: `t${run}/devices`,
      MQTT_CLIENT_ID: `vigil-crash-${run}`,
      MQTT_CLEAN_SESSION: 'false',
      MQTT_SESSION_EXPIRY_S: '300',
      PORT: '0',
      DATA_DIR: `/tmp/vigil-${run}`,
    };
    hubs.push(await spawnHub(env));
    const total = 1500;
    const publisher = await steadyPublisher({
      prefix: env.MQTT_TOPIC_PREFIX,
      devices: Array.from({ length: 10 }, (_, i) => `${run}-d${i}`),
      total,
      ratePerS: 250,
    });
    await new Promise((r) => setTimeout(r, 2000));
    const code = await hubs.at(-1)!.stop(signal);
    if (signal === 'SIGTERM') expect(code).toBe(0); // graceful: flushed and exited cleanly
    const acceptedAtStop = publisher.accepted;
    const restartAt = Date.now();
    hubs.push(await spawnHub(env));
    const recoveryMs = Date.now() - restartAt;
    await publisher.done;
    const until = Date.now() + 15_000;
    let stored = await storedRows(run);
    while (stored.rows < total && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
      stored = await storedRows(run);
    }
    recordFault({
      fault: `hub ${signal} mid-stream, restarted`,
      accepted: publisher.accepted,
      stored: stored.rows,
      duplicates: stored.rows - stored.distinct,
      recoveryMs,
      note: `${acceptedAtStop} accepted before the stop; recovery = restart to listening`,
    });
    expect(publisher.accepted).toBe(total);
    expect(stored).toEqual({ rows: total, distinct: total });
  });
}
