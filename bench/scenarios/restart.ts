import { cpuMsOf, readCounter, rssOf, startRestartableBenchHub, type BenchServices } from '../bench-env.js';
import { seedFleet, seededReading } from '../load/seed-fleet.js';
import type { HubProcess } from '../../tests/helpers/hub-process.js';
import type { Figure } from '../report.js';

const RECONCILED = 'presence reconciled after the broker backlog';
/** One probe request may take this long (a busy hub answers late; a hung one must not hang the bench). */
const ASK_TIMEOUT_MS = 10_000;

/** A request that fails or times out counts as "not yet". */
async function ask<T>(request: () => Promise<T>, otherwise: T): Promise<T> {
  try {
    return await request();
  } catch {
    return otherwise;
  }
}

/** Limits that let the whole seeded fleet be restored (MAX_DEVICES bounds the restore too). */
export const fleetEnv = (devices: number): Record<string, string> => ({
  MAX_DEVICES: String(devices + 10_000),
  MAX_NEW_DEVICES_PER_S: '1000000',
  MAX_NEW_DEVICES_BURST: '1000000',
});

/** Does the hub serve device `bench-<i>` with the telemetry the seed gave it? */
async function snapshotRight(port: number, i: number): Promise<boolean> {
  const response = await fetch(`http://127.0.0.1:${port}/status/bench-${i}`, { signal: AbortSignal.timeout(ASK_TIMEOUT_MS) });
  if (response.status !== 200) return false;
  const body = (await response.json()) as { battery_level?: number; rssi?: number };
  const want = seededReading(i);
  return body.battery_level === want.batteryLevel && body.rssi === want.rssi;
}

export interface ReadyTimes {
  /** Process spawned → "Vigil listening" (the restore runs before the hub listens). */
  readonly listeningS: number;
  /** Spawned → all three conditions held. */
  readonly readyS: number;
  readonly rssAtReady: number;
  /** CPU time (user + system) the hub process used from spawn to ready: the work, whatever the machine's load. */
  readonly cpuSAtReady: number;
  readonly backlogReadS: number;
}

/**
 * Waits until the hub is ready in every sense a restart must reach: /readyz 200, correct snapshots
 * for sampled devices (first, middle, last: restored telemetry), and presence reconciled (its log
 * line). Times are from `spawnedAt` (performance.now() just before the process was spawned).
 */
export async function waitUntilReady(hub: HubProcess, spawnedAt: number, listenedAt: number, devices: number, timeoutMs: number): Promise<ReadyTimes> {
  const samples = devices === 0 ? [] : [0, Math.floor(devices / 2), devices - 1];
  let ready = false;
  let snapshots = false;
  let reconciled = false;
  let lastReport = performance.now();
  for (;;) {
    if (performance.now() - spawnedAt > timeoutMs) {
      throw new Error(`hub not ready in ${timeoutMs} ms (readyz ${ready}, snapshots ${snapshots}, reconciled ${reconciled})`);
    }
    ready ||= await ask(async () => (await fetch(`http://127.0.0.1:${hub.port}/readyz`, { signal: AbortSignal.timeout(ASK_TIMEOUT_MS) })).status === 200, false);
    if (!snapshots) snapshots = (await Promise.all(samples.map((i) => ask(() => snapshotRight(hub.port, i), false)))).every(Boolean);
    reconciled ||= hub.logs.some((line) => line.includes(RECONCILED));
    if (ready && snapshots && reconciled) break;
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      process.stderr.write(`restart: ${((lastReport - spawnedAt) / 1000).toFixed(0)} s: readyz ${ready}, snapshots ${snapshots}, reconciled ${reconciled}\n`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const readyAt = performance.now();
  return {
    listeningS: (listenedAt - spawnedAt) / 1000,
    readyS: (readyAt - spawnedAt) / 1000,
    rssAtReady: rssOf(hub.child.pid!),
    cpuSAtReady: cpuMsOf(hub.child.pid!) / 1000,
    backlogReadS: await readCounter(hub.port, /^vigil_presence_backlog_read_seconds (\S+)/m),
  };
}

/**
 * Restart to ready with N devices: the hub runs once on an empty database (its migrations), stops,
 * the fleet is written into its tables (bench/load/seed-fleet.ts), and a new hub process is timed
 * from spawn to ready (waitUntilReady). The baseline in the same run: the same restart with no
 * devices, the hub's fixed start cost (Node, tsx, migrations check, broker, Redis).
 */
export async function restartScenario(s: BenchServices, counts: readonly number[]): Promise<Figure[]> {
  const figures: Figure[] = [];
  let baselineRss = 0;
  for (const devices of [0, ...counts]) {
    const timeoutMs = 60_000 + devices * 0.5; // 0.5 ms a device: 560 s for 1M (the goal is 60 s)
    const bench = await startRestartableBenchHub(s, { MQTT_QOS: '1', MQTT_CLEAN_SESSION: 'false', ...fleetEnv(devices) });
    try {
      await bench.halt();
      process.stderr.write(`restart: seeding ${devices} devices…\n`);
      const seeded = devices > 0 ? await seedFleet(bench.databaseUrl, devices, Date.now()) : { seconds: 0, alerts: 0 };
      process.stderr.write(`restart: starting the hub on ${devices} devices…\n`);
      const spawnedAt = performance.now();
      const hub = await bench.spawn(timeoutMs);
      const t = await waitUntilReady(hub, spawnedAt, performance.now(), devices, timeoutMs);
      if (devices === 0) baselineRss = t.rssAtReady;
      const label = devices === 0 ? 'no devices (baseline)' : `${devices.toLocaleString('en-US')} devices`;
      figures.push(
        { scenario: 'restart', metric: `restart to ready, ${label}`, value: t.readyS, unit: 's', note: `listening after ${t.listeningS.toFixed(2)} s; /readyz 200, sampled snapshots right, presence reconciled (backlog read in ${t.backlogReadS.toFixed(2)} s)${devices > 0 ? `; ${seeded.alerts} active alerts, seeded in ${seeded.seconds.toFixed(1)} s` : ''}` },
        { scenario: 'restart', metric: `hub CPU to ready, ${label}`, value: t.cpuSAtReady, unit: 's', note: 'user + system time of the hub process from spawn to ready (less sensitive to a shared machine than the wall time)' },
        { scenario: 'restart', metric: `RSS at ready, ${label}`, value: t.rssAtReady / 2 ** 20, unit: 'MiB', note: devices > 0 ? `${Math.round((t.rssAtReady - baselineRss) / devices)} B a device over the baseline's RSS` : 'the hub with nothing restored' },
      );
    } finally {
      await bench.stop();
    }
  }
  return figures;
}
