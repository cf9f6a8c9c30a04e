import postgres from 'postgres';
import { spawnHub, type HubProcess } from '../tests/helpers/hub-process.js';

export interface BenchServices {
  readonly mqttUrl: string;
  readonly redisUrl: string;
  readonly postgresAdminUrl: string;
}

/** A hub process on this machine's Mosquitto, Redis and a throwaway PostgreSQL database. */
export async function startBenchHub(services: BenchServices, extra: Record<string, string> = {}): Promise<{ hub: HubProcess; prefix: string; stop(): Promise<void> }> {
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const admin = postgres(services.postgresAdminUrl, { max: 1, onnotice: () => undefined });
  const name = `vigil_bench_${run}`;
  await admin.unsafe(`create database ${name}`);
  const url = new URL(services.postgresAdminUrl);
  url.pathname = `/${name}`;
  const prefix = `b${run}/devices`;
  const hub = await spawnHub({
    PORT: '0',
    MQTT_URL: services.mqttUrl,
    REDIS_URL: services.redisUrl,
    DATABASE_URL: url.toString(),
    REDIS_KEY_PREFIX: `vigil-bench:${run}:`,
    MQTT_TOPIC_PREFIX: prefix,
    MQTT_CLIENT_ID: `vigil-bench-${run}`,
    MQTT_CLEAN_SESSION: 'true',
    WS_MAX_CONNECTIONS: '19500',
    WS_MAX_SUBSCRIPTIONS: '100000',
    DATA_DIR: `/tmp/vigil-bench-${run}`,
    ...extra,
  });
  return {
    hub,
    prefix,
    async stop() {
      await hub.stop();
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** N hub processes in cluster mode sharing one broker group, Redis prefix and database. */
export async function startBenchCluster(
  services: BenchServices,
  instances: number,
  extra: Record<string, string> = {},
): Promise<{ hubs: HubProcess[]; prefix: string; stop(): Promise<void> }> {
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const admin = postgres(services.postgresAdminUrl, { max: 1, onnotice: () => undefined });
  const name = `vigil_bench_${run}`;
  await admin.unsafe(`create database ${name}`);
  const url = new URL(services.postgresAdminUrl);
  url.pathname = `/${name}`;
  const prefix = `b${run}/devices`;
  const hubs: HubProcess[] = [];
  for (let i = 0; i < instances; i++) {
    hubs.push(
      await spawnHub({
        PORT: '0',
        MQTT_URL: services.mqttUrl,
        REDIS_URL: services.redisUrl,
        DATABASE_URL: url.toString(),
        REDIS_KEY_PREFIX: `vigil-bench:${run}:`,
        MQTT_TOPIC_PREFIX: prefix,
        CLUSTER_ENABLED: 'true',
        CLUSTER_INSTANCE_ID: `bench-${run}-${i}`,
        MQTT_SHARED_GROUP: `bench${run}`,
        WS_MAX_CONNECTIONS: '19500',
        DATA_DIR: `/tmp/vigil-bench-${run}-${i}`,
        ...extra,
      }),
    );
  }
  // Every instance sees the others before load starts (1 s heartbeats).
  for (const hub of hubs) {
    for (let tries = 0; tries < 50 && (await readCounter(hub.port, /^vigil_cluster_members (\d+)/m)) < instances; tries++) {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    hubs,
    prefix,
    async stop() {
      await Promise.all(hubs.map((h) => h.stop()));
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** Reads a counter from the hub's /metrics. */
export async function readCounter(port: number, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}
