import { connect } from 'node:net';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { SERVICES, randomSuffix } from './services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A throwaway PostgreSQL database for this test run. */
    postgresUrl: string;
  }
}

const START_HINTS: Record<string, string> = {
  PostgreSQL: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
  Redis: 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
  Mosquitto: 'mosquitto -d -c /etc/mosquitto/mosquitto.conf',
};

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || defaultPort), timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Fails the whole run, loudly, when a service the integration tests need is down. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const missing: string[] = [];
  if (!(await reachable(SERVICES.postgresAdminUrl, 5432))) missing.push('PostgreSQL');
  if (!(await reachable(SERVICES.redisUrl, 6379))) missing.push('Redis');
  if (!(await reachable(SERVICES.mqttUrl, 1883))) missing.push('Mosquitto');
  if (missing.length > 0) {
    throw new Error(`services not reachable: ${missing.map((m) => `${m} (start: ${START_HINTS[m]})`).join('; ')}`);
  }
  const name = `vigil_test_${randomSuffix()}`;
  const admin = postgres(SERVICES.postgresAdminUrl, { max: 1, onnotice: () => undefined });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(SERVICES.postgresAdminUrl);
  url.pathname = `/${name}`;
  project.provide('postgresUrl', url.toString());
  return async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  };
}
