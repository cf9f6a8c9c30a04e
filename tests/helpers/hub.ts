import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { inject } from 'vitest';
import { startHub, type RunningHub } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { SERVICES, randomSuffix } from './services.js';

export type HubMode = 'embedded' | 'services';

/**
 * Starts a real hub on ephemeral ports. `embedded`: no URLs (aedes, PGlite, in-process presence);
 * `services`: this machine's Mosquitto, Redis and PostgreSQL, with a random topic prefix, key
 * prefix and client id so runs never see each other's data.
 */
export async function startTestHub(mode: HubMode, overrides: Record<string, string> = {}): Promise<RunningHub> {
  return startHubWithEnv({ ...testHubEnv(mode), ...overrides });
}

/** The environment of a test hub; start two hubs with the same one to restart "the same" hub. */
export function testHubEnv(mode: HubMode): Record<string, string> {
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    MQTT_CLIENT_ID: `vigil-test-${randomSuffix()}`,
    MQTT_CLEAN_SESSION: 'true',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'vigil-test-')),
  };
  if (mode === 'embedded') env.MQTT_PORT = '0';
  else {
    env.MQTT_URL = SERVICES.mqttUrl;
    env.MQTT_TOPIC_PREFIX = `t${randomSuffix()}/devices`;
    env.REDIS_URL = SERVICES.redisUrl;
    env.REDIS_KEY_PREFIX = `vigil-test:${randomSuffix()}:`;
    env.DATABASE_URL = inject('postgresUrl');
  }
  return env;
}

export async function startHubWithEnv(env: Record<string, string>): Promise<RunningHub> {
  const config = loadConfig(env);
  return startHub(config, createLogger(config.LOG_LEVEL));
}

export function wsUrl(hub: RunningHub): string {
  return `ws://127.0.0.1:${hub.port}/ws`;
}

export function httpUrl(hub: RunningHub, path: string): string {
  return `http://127.0.0.1:${hub.port}${path}`;
}

/** A device-side MQTT client on the hub's broker, publishing under the hub's topic prefix. */
export async function deviceClient(hub: RunningHub, prefix: string): Promise<{
  client: MqttClient;
  telemetry(deviceId: string, body: unknown): Promise<void>;
  raw(topic: string, payload: string | Buffer): Promise<void>;
}> {
  const client = await connectAsync(hub.mqttUrl, { clientId: `dev-${randomSuffix()}`, clean: true, reconnectPeriod: 0 });
  return {
    client,
    async telemetry(deviceId, body) {
      await client.publishAsync(`${prefix}/${deviceId}/telemetry`, typeof body === 'string' ? body : JSON.stringify(body), { qos: 1 });
    },
    async raw(topic, payload) {
      await client.publishAsync(`${prefix}/${topic}`, payload, { qos: 1 });
    },
  };
}
