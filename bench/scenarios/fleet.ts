import { readCounter, rssOf, startRestartableBenchHub, type BenchServices } from '../bench-env.js';
import { runChild } from '../load/child.js';
import { heapAfterGc, writeSnapshotOf } from '../load/inspector-heap.js';
import { seedFleet } from '../load/seed-fleet.js';
import type { Figure } from '../report.js';
import { fleetEnv, waitUntilReady } from './restart.js';

/** Offline timeout of the fleet runs: every device goes silent after its one message. */
const OFFLINE_TIMEOUT_S = 20;
const ACCEPTED = /vigil_mqtt_messages_total\{kind="telemetry",outcome="accepted"\} (\d+)/;

async function poll(what: string, timeoutMs: number, done: () => Promise<boolean>): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!(await done())) {
    if (performance.now() > until) throw new Error(`fleet: ${what} not reached in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The live heap after a full collection (through the inspector) and the RSS, together. */
async function memory(logs: readonly string[], pid: number): Promise<{ heap: number; rss: number }> {
  const heap = await heapAfterGc(logs);
  return { heap, rss: rssOf(pid) };
}

/**
 * Heap per device at fleet scale, with health and alert state, and presence expiries at that scale.
 * Devices are registered by restore, then each sends one telemetry message:
 *  1. the fleet is seeded into the hub's tables (telemetry, a health score each, an active alert per
 *     20; status offline, so only the messages below arm presence) and the hub restarted onto it;
 *     heap (full GC through the inspector) and RSS are read once it is ready;
 *  2. every device publishes one message (QoS 1, so none is dropped), which gives each the live
 *     state a talking device has (registry entry, presence deadline, health scoring, rule state);
 *     heap and RSS are read again once all are accepted;
 *  3. every device then stays silent: each goes offline OFFLINE_TIMEOUT_S after its message, and
 *     vigil_presence_expiry_lag_seconds says how late each transition was against its deadline.
 * The baseline in the same run: the same hub with no devices. Per-device figures are over it.
 * Presence lives in Redis here (the bench hub's REDIS_URL), outside the hub's heap.
 */
export async function fleetScenario(s: BenchServices, counts: readonly number[]): Promise<Figure[]> {
  const figures: Figure[] = [];
  let base = { heap: 0, rss: 0 };
  for (const devices of [0, ...counts]) {
    const label = devices === 0 ? 'no devices (baseline)' : `${devices.toLocaleString('en-US')} devices`;
    const timeoutMs = 60_000 + devices * 0.5;
    // A persistent session, as the hub's default: a reconnect under the wave's load must not lose what the broker queued.
    const bench = await startRestartableBenchHub(s, { MQTT_QOS: '1', MQTT_CLEAN_SESSION: 'false', OFFLINE_TIMEOUT_S: String(OFFLINE_TIMEOUT_S), ...fleetEnv(devices) }, ['--inspect=127.0.0.1:0']);
    try {
      await bench.halt();
      if (devices > 0) {
        process.stderr.write(`fleet: seeding ${devices} devices…\n`);
        await seedFleet(bench.databaseUrl, devices, Date.now() - 3_600_000, 'offline');
      }
      const spawnedAt = performance.now();
      const hub = await bench.spawn(timeoutMs);
      await waitUntilReady(hub, spawnedAt, performance.now(), devices, timeoutMs);
      const restored = await memory(hub.logs, hub.child.pid!);
      if (process.env.FLEET_SNAPSHOTS) await writeSnapshotOf(hub.logs, `${process.env.FLEET_SNAPSHOTS}/restored-${devices}.heapsnapshot`);
      if (devices === 0) {
        base = restored;
        figures.push(
          { scenario: 'fleet', metric: `hub heap, ${label}`, value: restored.heap / 2 ** 20, unit: 'MiB', note: 'after a full GC through the inspector' },
          { scenario: 'fleet', metric: `hub RSS, ${label}`, value: restored.rss / 2 ** 20, unit: 'MiB' },
        );
        continue;
      }
      process.stderr.write(`fleet: one message from each of ${devices} devices…\n`);
      // The publisher runs until every message is out: a hub taking a million first messages (each an
      // offline → online transition with its rows) accepts ~2,000–3,000 a second here.
      const publishSeconds = Math.ceil(devices / 1000) + 60;
      const pub = runChild<{ sent: number; seconds: number }>('bench/load/publisher.ts', { url: s.mqttUrl, prefix: bench.prefix, count: devices, devices, qos: 1, 'max-seconds': publishSeconds }, publishSeconds * 1000 + 30_000);
      let reported = performance.now();
      await poll('every device accepted', publishSeconds * 1000 + 30_000, async () => {
        const accepted = await readCounter(hub.port, ACCEPTED);
        if (performance.now() - reported > 30_000) {
          reported = performance.now();
          process.stderr.write(`fleet: ${accepted} of ${devices} accepted\n`);
        }
        return accepted >= devices;
      });
      const sent = await pub.result;
      // Rows still on their way to the database are not state a device keeps: measured once written.
      await poll('the writer drained', 120_000, async () => (await readCounter(hub.port, /^vigil_writer_queue_depth (\S+)/m)) === 0);
      const talking = await memory(hub.logs, hub.child.pid!);
      if (process.env.FLEET_SNAPSHOTS) await writeSnapshotOf(hub.logs, `${process.env.FLEET_SNAPSHOTS}/talking-${devices}.heapsnapshot`);
      process.stderr.write(`fleet: waiting for ${devices} expiries…\n`);
      const expiries = () => readCounter(hub.port, /^vigil_presence_expiry_lag_seconds_count (\S+)/m);
      await poll('every device offline', (OFFLINE_TIMEOUT_S + sent.seconds) * 1000 + 120_000, async () => (await expiries()) >= devices).catch((error: Error) => process.stderr.write(`${error.message}\n`));
      const count = await expiries();
      const withinSecond = await readCounter(hub.port, /^vigil_presence_expiry_lag_seconds_bucket\{le="1"\} (\S+)/m);
      const within100ms = await readCounter(hub.port, /^vigil_presence_expiry_lag_seconds_bucket\{le="0.1"\} (\S+)/m);
      const sum = await readCounter(hub.port, /^vigil_presence_expiry_lag_seconds_sum (\S+)/m);
      const perDevice = (m: { heap: number; rss: number }) => ({ heap: (m.heap - base.heap) / devices, rss: (m.rss - base.rss) / devices });
      const afterRestore = perDevice(restored);
      const afterMessage = perDevice(talking);
      figures.push(
        { scenario: 'fleet', metric: `hub heap per device, ${label}`, value: afterMessage.heap, unit: 'bytes', note: `registered by restore + one message each (health, alerts: 1 in 20), over the baseline; target <= 1,024; ${Math.round(afterRestore.heap)} B after the restore alone` },
        { scenario: 'fleet', metric: `hub RSS, ${label}`, value: talking.rss / 2 ** 20, unit: 'MiB', note: `${Math.round(afterMessage.rss)} B a device over the baseline (${Math.round(afterRestore.rss)} after the restore alone); 1M target < 2 GiB` },
        { scenario: 'fleet', metric: `offline within 1 s of the deadline, ${label}`, value: count > 0 ? (100 * withinSecond) / count : NaN, unit: '%', note: `${count}/${devices} went offline ${OFFLINE_TIMEOUT_S} s after their one message (sent over ${sent.seconds.toFixed(1)} s); ${count > 0 ? ((100 * within100ms) / count).toFixed(1) : 'NaN'} % within 0.1 s; mean lag ${count > 0 ? ((1000 * sum) / count).toFixed(0) : 'NaN'} ms (vigil_presence_expiry_lag_seconds)` },
      );
    } finally {
      await bench.stop();
    }
  }
  return figures;
}
