import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { spawnHub, type HubProcess } from '../tests/helpers/hub-process.js';

export interface BenchServices {
  readonly mqttUrl: string;
  readonly redisUrl: string;
  readonly postgresAdminUrl: string;
}

interface BenchHubs {
  readonly hubs: HubProcess[];
  readonly prefix: string;
  /** The throwaway database the hubs use (seeded directly by the restart and heap scenarios). */
  readonly databaseUrl: string;
  /** The environment each hub was started with, to start it again (a restart). */
  readonly envs: readonly Record<string, string>[];
  stop(): Promise<void>;
}

/**
 * Hub processes on this machine's Mosquitto and Redis and a throwaway PostgreSQL database, with a
 * topic and key prefix of their own. `instances` > 0 runs them in cluster mode (every instance reading
 * every message, Redis fan-out) and waits until each sees the others; 0 runs one single-instance hub.
 */
async function startHubs(services: BenchServices, instances: number, extra: Record<string, string>, nodeArgs: readonly string[] = [], startTimeoutMs = 30_000): Promise<BenchHubs> {
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const admin = postgres(services.postgresAdminUrl, { max: 1, onnotice: () => undefined });
  const name = `vigil_bench_${run}`;
  await admin.unsafe(`create database ${name}`);
  const url = new URL(services.postgresAdminUrl);
  url.pathname = `/${name}`;
  const prefix = `b${run}/devices`;
  const base = {
    PORT: '0',
    MQTT_URL: services.mqttUrl,
    REDIS_URL: services.redisUrl,
    DATABASE_URL: url.toString(),
    REDIS_KEY_PREFIX: `vigil-bench:${run}:`,
    MQTT_TOPIC_PREFIX: prefix,
    MQTT_CLEAN_SESSION: 'true',
    WS_MAX_CONNECTIONS: '19500',
    // Load clients all connect from loopback: the per-address limit is for production clients.
    WS_CONNECTION_LIMIT_EXEMPT: '127.0.0.1',
    WS_MAX_SUBSCRIPTIONS: '100000',
  };
  const hubs: HubProcess[] = [];
  const envs: Record<string, string>[] = [];
  for (let i = 0; i < Math.max(1, instances); i++) {
    const own: Record<string, string> =
      instances === 0
        ? { MQTT_CLIENT_ID: `vigil-bench-${run}` }
        : { CLUSTER_ENABLED: 'true', CLUSTER_INSTANCE_ID: `bench-${run}-${i}` };
    const env = { ...base, ...own, DATA_DIR: `/tmp/vigil-bench-${run}-${i}`, ...extra };
    envs.push(env);
    hubs.push(await spawnHub(env, startTimeoutMs, nodeArgs));
  }
  // Every instance sees the others before load starts (1 s heartbeats).
  for (const hub of instances > 1 ? hubs : []) {
    for (let tries = 0; tries < 50 && (await readCounter(hub.port, /^vigil_cluster_members (\d+)/m)) < instances; tries++) {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    hubs,
    prefix,
    databaseUrl: url.toString(),
    envs,
    async stop() {
      // SIGTERM, then SIGKILL after 20 s: a hub stuck in its shutdown must not hang the bench.
      await Promise.all(
        hubs.map(async (h) => {
          const killer = setTimeout(() => h.child.kill('SIGKILL'), 20_000);
          await h.stop();
          clearTimeout(killer);
        }),
      );
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** One single-instance hub process (`nodeArgs`: extra node flags, e.g. `--inspect=127.0.0.1:0`). */
export async function startBenchHub(services: BenchServices, extra: Record<string, string> = {}, nodeArgs: readonly string[] = []): Promise<{ hub: HubProcess; prefix: string; stop(): Promise<void> }> {
  const started = await startHubs(services, 0, extra, nodeArgs);
  return { hub: started.hubs[0]!, prefix: started.prefix, stop: started.stop };
}

/**
 * One single-instance hub that can be stopped and started again on the same database, broker
 * session and topic prefix: `restart()` stops the running process (if any) and spawns a new one,
 * resolving when it listens (`startTimeoutMs`: restoring a large fleet comes before listening).
 */
export async function startRestartableBenchHub(services: BenchServices, extra: Record<string, string> = {}, nodeArgs: readonly string[] = []) {
  const started = await startHubs(services, 0, extra, nodeArgs);
  return {
    prefix: started.prefix,
    databaseUrl: started.databaseUrl,
    get hub(): HubProcess {
      return started.hubs[0]!;
    },
    /**
     * Stops the current process and waits for its exit (the database and broker session stay):
     * SIGTERM, then SIGKILL after `graceMs` (a restart measures the next start, not this shutdown).
     */
    async halt(graceMs = 20_000): Promise<void> {
      const hub = started.hubs[0]!;
      const killer = setTimeout(() => {
        process.stderr.write(`bench: hub ${hub.child.pid} still running ${graceMs} ms after SIGTERM; SIGKILL\n`);
        hub.child.kill('SIGKILL');
      }, graceMs);
      try {
        await hub.stop();
      } finally {
        clearTimeout(killer);
      }
    },
    /** Spawns the hub again with the same environment; call halt() first. */
    async spawn(startTimeoutMs: number, args: readonly string[] = nodeArgs): Promise<HubProcess> {
      const hub = await spawnHub(started.envs[0]!, startTimeoutMs, args);
      started.hubs[0] = hub;
      return hub;
    },
    stop: started.stop,
  };
}

/** N hub processes in cluster mode sharing one broker group, Redis prefix and database. */
export function startBenchCluster(services: BenchServices, instances: number, extra: Record<string, string> = {}): Promise<BenchHubs> {
  return startHubs(services, instances, extra);
}

/** Reads a counter from the hub's /metrics. */
export async function readCounter(port: number, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

const ACCEPTED = /vigil_mqtt_messages_total\{kind="telemetry",outcome="accepted"\} (\d+)/;

/**
 * Telemetry messages/s the hubs accept together (each counted once, where it is processed), from
 * the first to the last counted, until `count` are in or nothing moved for 3 s.
 */
export async function acceptedRate(hubs: readonly HubProcess[], count: number): Promise<{ rate: number; accepted: number; cpuUsPerMsg: number }> {
  let first = 0;
  let last = 0;
  let accepted = 0;
  let acceptedAtFirst = 0;
  // The hubs' CPU over the same window as the rate (first to last counted), summed: what they
  // spent on these messages, without the idle time before the publisher starts or after it ends.
  const cpu = () => hubs.reduce((sum, h) => sum + cpuMsOf(h.child.pid!), 0);
  let cpuAtFirst = 0;
  let cpuAtLast = 0;
  let idleSince = performance.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const now = (await Promise.all(hubs.map((h) => readCounter(h.port, ACCEPTED)))).reduce((a, b) => a + b, 0);
    const at = performance.now();
    if (now > accepted) {
      if (accepted === 0) {
        first = at;
        acceptedAtFirst = now;
        cpuAtFirst = cpu();
      }
      accepted = now;
      last = at;
      cpuAtLast = cpu();
      idleSince = at;
    }
    // Before the first message, wait longer: on a loaded machine the publisher child takes seconds to start.
    if (accepted >= count || at - idleSince > (accepted === 0 ? 60_000 : 3000)) break;
  }
  const counted = accepted - acceptedAtFirst;
  return { rate: accepted / ((last - first) / 1000), accepted, cpuUsPerMsg: counted > 0 ? ((cpuAtLast - cpuAtFirst) * 1000) / counted : NaN };
}

/** CPU time (user + system) a process has used so far, ms, from /proc (Linux: USER_HZ is 100). */
export function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resident set size of a process now, bytes, from /proc (VmRSS). */
export function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? NaN) * 1024;
}
