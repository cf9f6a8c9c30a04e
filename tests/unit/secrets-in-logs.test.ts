import { describe, expect, it } from 'vitest';
import { ConfigError, isSecretSetting, loadConfig } from '../../src/config.js';
import { Faults } from '../../src/errors/boundary.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { internalErrorBody } from '../../src/transport/http/respond.js';
import { redactUrl, redactUrlsIn } from '../../src/redact-url.js';

it('never writes secrets to the log', () => {
  const lines: string[] = [];
  const log = createLogger('debug', { write: (line: string) => void lines.push(line) });
  log.info({ password: 'hunter2', token: 'tok-secret', apiKey: 'vgl_a_secret1', key: 'vgl_b_secret2' }, 'top level');
  log.warn({ mqtt: { password: 'mqtt-secret', url: 'mqtt://u:pw-secret@broker:1883' } }, 'nested');
  log.info({ url: redactUrl('redis://:redis-secret@cache:6379/0') }, 'connection');
  log.error({ err: 'connect failed', url: redactUrl('postgres://vigil:pg-secret@db/vigil') }, 'error');
  const text = lines.join('');
  for (const secret of ['hunter2', 'tok-secret', 'secret1', 'secret2', 'mqtt-secret', 'pw-secret', 'redis-secret', 'pg-secret']) {
    expect(text).not.toContain(secret);
  }
  expect(text).toContain('cache:6379');
});

describe('secrets in failure paths', () => {
  const capture = () => {
    const lines: string[] = [];
    return { lines, log: createLogger('debug', { write: (line: string) => void lines.push(line) }) };
  };

  it('never echoes a secret setting in a configuration error, and redacts passwords in bad URLs', () => {
    const secret = 'short-ws-secret-value';
    const bad = [
      { WS_TOKEN_SECRET: secret },
      { WS_TOKEN_SECRET: 'another-short-one' },
      { DATABASE_URL: 'postgres://vigil:pg-config-secret@db:99999/vigil' },
      { DATABASE_URL: 'mysql://vigil:pg-config-secret@db/vigil' },
      { REDIS_URL: 'redis://:redis-config-secret@cache:port/0' },
      { MQTT_URL: 'http://hub:mqtt-config-secret@broker' },
    ];
    for (const env of bad) {
      const message = (() => {
        try {
          loadConfig(env);
          return 'no error';
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError); // never a TypeError carrying the raw URL
          return (error as Error).message;
        }
      })();
      expect(message).toContain(Object.keys(env)[0]!);
      for (const leaked of [secret, 'another-short-one', 'pg-config-secret', 'redis-config-secret', 'mqtt-config-secret']) expect(message).not.toContain(leaked);
    }
    expect(isSecretSetting('WS_TOKEN_SECRET') && isSecretSetting('MQTT_PASSWORD') && isSecretSetting('SOME_API_KEY')).toBe(true);
    expect(isSecretSetting('REDIS_KEY_PREFIX') || isSecretSetting('MQTT_USERNAME')).toBe(false);
  });

  it('redacts URL passwords anywhere in a text, even in URLs that do not parse', () => {
    expect(redactUrlsIn('connect to postgres://vigil:s3cret@db:5432/vigil failed')).toBe('connect to postgres://vigil:redacted@db:5432/vigil failed');
    expect(redactUrlsIn('"redis://:p@ss/w0rd@cache:6379" and mqtt://u:x@b')).toBe('"redis://:redacted@cache:6379" and mqtt://u:redacted@b');
    expect(redactUrlsIn('no url: a:b@c, https://example.com/a@b')).toBe('no url: a:b@c, https://example.com/a@b');
  });

  it('logs a caught fault with its message and stack redacted, rate-limited per entry, and counts every one', async () => {
    const { lines, log } = capture();
    const metrics = createMetrics();
    let now = 0;
    const faults = new Faults(log, metrics, () => now);
    for (let i = 0; i < 5; i++) faults.report('mqtt', new Error('driver said postgres://vigil:fault-secret@db/vigil'));
    faults.report('ws', 'a thrown string with redis://:fault-secret-2@cache');
    now = 10_000;
    faults.report('mqtt', new Error('again'));
    const counts = Object.fromEntries((await metrics.internalErrors.get()).values.map((v) => [v.labels.entry, v.value]));
    expect(counts).toEqual({ mqtt: 6, ws: 1 });
    const logged = lines.map((l) => JSON.parse(l) as { entry: string; unlogged?: number; err: { message: string; stack?: string } });
    expect(logged.map((l) => l.entry)).toEqual(['mqtt', 'ws', 'mqtt']);
    expect(logged[2]!.unlogged).toBe(4);
    expect(logged[0]!.err.stack).toContain('postgres://vigil:redacted@db');
    expect(lines.join('')).not.toContain('fault-secret');
  });

  it('never throws from a report, a guarded callback or a catcher', () => {
    const metrics = createMetrics();
    const broken = { error: () => { throw new Error('log stream closed'); } } as unknown as Logger;
    const faults = new Faults(broken, metrics);
    expect(() => faults.report('process', new Error('x'))).not.toThrow();
    expect(() => faults.guard('health_sweep', () => { throw new Error('tick'); })()).not.toThrow();
    expect(() => faults.catcher('reconcile')(new Error('rejected'))).not.toThrow();
  });

  it('answers a 500 with the request id only', () => {
    expect(internalErrorBody('req-1')).toEqual({ detail: 'internal error', error: { code: 'internal', message: 'internal error', request_id: 'req-1' } });
  });
});
