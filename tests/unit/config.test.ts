import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ConfigError, configSchema, loadConfig } from '../../src/config.js';

describe('configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ HOST: '127.0.0.1', PORT: 8080, MQTT_PORT: 1883, OFFLINE_TIMEOUT_S: 60, LOG_LEVEL: 'info' });
    expect(config.MQTT_URL).toBeUndefined();
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.DATABASE_URL).toBeUndefined();
  });

  it('reads the environment and lets flags override it', () => {
    const config = loadConfig({ PORT: '9000', OFFLINE_TIMEOUT_S: '30' }, ['--port', '9100', '--log-level=debug']);
    expect(config.PORT).toBe(9100);
    expect(config.OFFLINE_TIMEOUT_S).toBe(30);
    expect(config.LOG_LEVEL).toBe('debug');
  });

  it('names the bad variable and what it accepts', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT="eighty"/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL="loud".*(info|debug)/s);
    expect(() => loadConfig({ REDIS_URL: 'http://x' })).toThrow(/REDIS_URL=.*redis:\/\//);
    expect(() => loadConfig({ MQTT_TOPIC_PREFIX: 'devices/#' })).toThrow(/MQTT_TOPIC_PREFIX/);
  });

  it('refuses a minimum over its maximum, naming both', () => {
    expect(() => loadConfig({ LEARNED_TIMEOUT_SAMPLES: '16', LEARNED_TIMEOUT_MIN_SAMPLES: '32' })).toThrow(/LEARNED_TIMEOUT_MIN_SAMPLES=32 is over LEARNED_TIMEOUT_SAMPLES=16/);
    expect(() => loadConfig({ LEARNED_TIMEOUT_MIN_S: '600', LEARNED_TIMEOUT_MAX_S: '60' })).toThrow(/LEARNED_TIMEOUT_MIN_S=600 is over LEARNED_TIMEOUT_MAX_S=60/);
    expect(() => loadConfig({ NOTIFY_RETRY_BASE_MS: '600000', NOTIFY_RETRY_MAX_MS: '1000' })).toThrow(/NOTIFY_RETRY_BASE_MS/);
    expect(loadConfig({ LEARNED_TIMEOUT_SAMPLES: '16', LEARNED_TIMEOUT_MIN_SAMPLES: '16' }).LEARNED_TIMEOUT_MIN_SAMPLES).toBe(16);
  });

  it('rejects unknown flags and flags without a value', () => {
    expect(() => loadConfig({}, ['--prot', '1'])).toThrow(ConfigError);
    expect(() => loadConfig({}, ['--port'])).toThrow(/needs a value/);
  });
});

describe('README configuration table', () => {
  it('names every setting the hub reads', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const tableRows = readme.split('\n').filter((line) => line.startsWith('| `'));
    const missing = Object.keys(configSchema.shape).filter((key) => !tableRows.some((row) => row.includes(`\`${key}\``)));
    expect(missing).toEqual([]);
  });
});
