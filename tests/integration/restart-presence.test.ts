import { connectAsync } from 'mqtt';
import postgres from 'postgres';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { eventually, letTimePass } from '../helpers/wait.js';

/*
 * A hub restarted (SIGTERM or SIGKILL) for longer than a device's timeout, on Mosquitto with its
 * persistent session: the broker queued what devices sent meanwhile. A device that kept publishing
 * stays online (no offline → online pair is stored); one that really stopped goes offline once,
 * with its true last-seen time. In-process and Redis presence.
 */
const sql = postgres(inject('postgresUrl'), { max: 1, onnotice: () => undefined });
const hubs: HubProcess[] = [];

afterAll(async () => {
  await Promise.all(hubs.map((h) => h.stop()));
  await sql.end();
});

interface Row {
  device_id: string;
  status: string;
  reason: string;
  last_seen: Date | null;
}

describe.each([
  ['in-process presence', 'SIGTERM'],
  ['in-process presence', 'SIGKILL'],
  ['Redis presence', 'SIGTERM'],
  ['Redis presence', 'SIGKILL'],
] as const)('hub restart with a broker backlog (%s, %s)', (presence, signal) => {
  it('keeps a device that published throughout online, and reports one that stopped offline with its true last seen', async () => {
    const run = randomSuffix();
    const prefix = `r${run}/devices`;
    const env: Record<string, string> = {
      MQTT_URL: SERVICES.mqttUrl,
      MQTT_CLIENT_ID: `vigil-restart-${run}`,
      MQTT_CLEAN_SESSION: 'false',
      MQTT_TOPIC_PREFIX: prefix,
      DATABASE_URL: inject('postgresUrl'),
      OFFLINE_TIMEOUT_S: '1.5',
      PRESENCE_SWEEP_MS: '100',
      WRITER_DEVICE_REFRESH_MS: '100',
      PORT: '0',
      DATA_DIR: `/tmp/vigil-restart-${run}`,
      ...(presence === 'Redis presence' ? { REDIS_URL: SERVICES.redisUrl, REDIS_KEY_PREFIX: `vigil-restart:${run}:` } : {}),
    };
    const [alive, stopped] = [`${run}-alive`, `${run}-stopped`];
    const rows = () => sql<Row[]>`select device_id, status, reason, last_seen from status_changes where device_id in (${alive}, ${stopped}) order by id`;
    const device = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${run}`, clean: true });
    const publish = (id: string) => device.publishAsync(`${prefix}/${id}/telemetry`, JSON.stringify({ battery_level: 50 }), { qos: 1 });

    hubs.push(await spawnHub(env));
    const stoppedAt = Date.now();
    await publish(stopped);
    let publishing = true;
    const beating = (async () => {
      while (publishing) {
        await publish(alive);
        await letTimePass(200, 'the device publishes every 200 ms');
      }
    })();
    await until(async () => (await rows()).length === 2);
    // Device rows (last seen) written before the hub goes: SIGKILL leaves no time to flush.
    await eventually('both device rows written', async () => (await seen([alive, stopped])) === 2);
    await hubs.pop()!.stop(signal);
    await letTimePass(2500, 'longer than the timeout: the broker queues `alive`\'s messages');
    hubs.push(await spawnHub(env));
    await until(async () => (await rows()).some((r) => r.device_id === stopped && r.status === 'offline'));
    await letTimePass(2000, '`alive` keeps publishing on the new hub, which must not call it offline');
    publishing = false;
    await beating;
    await device.endAsync();

    const gone = onlyStoppedWentOffline(await rows(), alive, stopped);
    expect(Math.abs(gone[1]!.last_seen!.getTime() - stoppedAt)).toBeLessThan(1000);
    expect(gone[1]!.last_seen!.getTime()).toBe(gone[0]!.last_seen!.getTime());
  }, 60_000);
});

describe('hub restart with a broker backlog (device time)', () => {
  it('judges a queued reading by the device time it carries: silent since then, the device is offline once the backlog is read', async () => {
    const run = randomSuffix();
    const prefix = `r${run}/devices`;
    const env: Record<string, string> = {
      MQTT_URL: SERVICES.mqttUrl,
      MQTT_CLIENT_ID: `vigil-restart-${run}`,
      MQTT_CLEAN_SESSION: 'false',
      MQTT_TOPIC_PREFIX: prefix,
      DATABASE_URL: inject('postgresUrl'),
      OFFLINE_TIMEOUT_S: '3',
      PRESENCE_SWEEP_MS: '100',
      WRITER_DEVICE_REFRESH_MS: '100',
      PORT: '0',
      DATA_DIR: `/tmp/vigil-restart-${run}`,
    };
    const id = `${run}-queued`;
    const rows = () => sql<Row[]>`select device_id, status, reason, last_seen from status_changes where device_id = ${id} order by id`;
    const device = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${run}`, clean: true });
    hubs.push(await spawnHub(env));
    await device.publishAsync(`${prefix}/${id}/telemetry`, '{}', { qos: 1 });
    await until(async () => (await rows()).length === 1);
    await eventually('the device row written', async () => (await seen([id])) === 1);
    await hubs.pop()!.stop('SIGTERM');
    // Sent while the hub is away, with the device's own time; then the device goes silent.
    const sentAt = Date.now();
    await device.publishAsync(`${prefix}/${id}/telemetry`, JSON.stringify({ timestamp: sentAt }), { qos: 1 });
    await device.endAsync();
    await letTimePass(3500, 'past its 3 s timeout by its own clock, while no hub runs');
    hubs.push(await spawnHub(env));
    const listening = Date.now();
    await until(async () => (await rows()).some((r) => r.status === 'offline'));
    const offline = (await rows()).find((r) => r.status === 'offline')!;
    expect(offline.last_seen!.getTime()).toBe(sentAt); // not the time the hub read it
    // Judged after the backlog, not a full timeout after the receipt.
    const at = (await sql<{ at: Date }[]>`select at from status_changes where device_id = ${id} and status = 'offline'`)[0]!.at.getTime();
    expect(at - listening).toBeLessThan(1500);
  }, 60_000);
});

/*
 * A whole cluster restarted for longer than a device's timeout: cluster instances use clean MQTT
 * sessions, so the broker queued nothing, and no instance kept presence. The first live member
 * holds judging of the devices whose keys expired meanwhile for CLUSTER_START_GRACE_S: one that
 * kept publishing stays online (no stored offline → online pair), one that stopped goes offline
 * once the grace ends, with its true last seen.
 */
describe.each(['SIGTERM', 'SIGKILL'] as const)('full-cluster restart, clean sessions (%s)', (signal) => {
  it('keeps a device that published throughout online, and reports one that stopped offline with its true last seen', async () => {
    const run = randomSuffix();
    const prefix = `c${run}/devices`;
    const env: Record<string, string> = {
      MQTT_URL: SERVICES.mqttUrl,
      MQTT_TOPIC_PREFIX: prefix,
      REDIS_URL: SERVICES.redisUrl,
      REDIS_KEY_PREFIX: `vigil-restart:${run}:`,
      CLUSTER_ENABLED: 'true',
      CLUSTER_INSTANCE_ID: `solo-${run}`,
      CLUSTER_START_GRACE_S: '3',
      DATABASE_URL: inject('postgresUrl'),
      OFFLINE_TIMEOUT_S: '1.5',
      PRESENCE_SWEEP_MS: '100',
      WRITER_DEVICE_REFRESH_MS: '100',
      PORT: '0',
      DATA_DIR: `/tmp/vigil-restart-${run}`,
    };
    const [alive, stopped] = [`${run}-alive`, `${run}-stopped`];
    const rows = () => sql<Row[]>`select device_id, status, reason, last_seen from status_changes where device_id in (${alive}, ${stopped}) order by id`;
    const device = await connectAsync(SERVICES.mqttUrl, { clientId: `dev-${run}`, clean: true });
    const publish = (id: string) => device.publishAsync(`${prefix}/${id}/telemetry`, JSON.stringify({ battery_level: 50 }), { qos: 1 });

    hubs.push(await spawnHub(env));
    let publishing = true;
    const beating = (async () => {
      while (publishing) {
        await publish(alive);
        await letTimePass(200, 'the device publishes every 200 ms');
      }
    })();
    // Until the instance reads the device stream (a message sent the moment it listens may precede that).
    let stoppedAt = 0;
    await eventually('`stopped` online', async () => {
      stoppedAt = Date.now();
      await publish(stopped);
      return (await rows()).some((r) => r.device_id === stopped);
    });
    await until(async () => (await rows()).length === 2);
    await eventually('both device rows written', async () => (await seen([alive, stopped])) === 2);
    await hubs.pop()!.stop(signal);
    await letTimePass(2500, 'longer than the timeout, with no instance running: nothing is queued for a clean session');
    hubs.push(await spawnHub(env));
    await until(async () => (await rows()).some((r) => r.device_id === stopped && r.status === 'offline'));
    await letTimePass(1000, '`alive` keeps publishing past the grace, and must not be called offline');
    publishing = false;
    await beating;
    await device.endAsync();

    const gone = onlyStoppedWentOffline(await rows(), alive, stopped);
    // Its true last seen: its last message before the restart, not the time it was judged.
    expect(Math.abs(gone[1]!.last_seen!.getTime() - stoppedAt)).toBeLessThan(300);
  }, 60_000);
});

const until = (check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> => eventually('the status rows', check, timeoutMs);

/** `alive`, which kept publishing, stored only its first online; `stopped` went online and then offline at the reconcile. Its two rows. */
function onlyStoppedWentOffline<R extends { device_id: string; status: string; reason: string }>(all: R[], alive: string, stopped: string): R[] {
  expect(all.filter((r) => r.device_id === alive).map((r) => r.status), JSON.stringify(all)).toEqual(['online']);
  const gone = all.filter((r) => r.device_id === stopped);
  expect(gone.map((r) => [r.status, r.reason])).toEqual([
    ['online', 'telemetry'],
    ['offline', 'reconcile'],
  ]);
  return gone;
}

/** How many of these devices have their row, with a last-seen time, in the database. */
async function seen(ids: string[]): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from devices where id in ${sql(ids)} and last_seen is not null`;
  return row!.n;
}
