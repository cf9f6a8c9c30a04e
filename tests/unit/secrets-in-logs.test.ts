import { expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { redactUrl } from '../../src/transport/redact-url.js';

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
