/** The real services every integration test talks to (CI starts them; a missing one fails the test). */
export const SERVICES = {
  mqttUrl: process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883',
  redisUrl: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  /** Admin connection used to create a throwaway database per test run. */
  postgresAdminUrl: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
};

export function randomSuffix(): string {
  return Math.random().toString(36).slice(2, 10);
}
