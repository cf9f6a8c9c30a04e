import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, inject, it } from 'vitest';

/** The hub refusing to start says why, naming the setting, and never shows the secret it was given. */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function start(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', MQTT_PORT: '0', DATA_DIR: mkdtempSync(join(tmpdir(), 'vigil-start-')), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

it('a bad secret setting is named, its value never shown', async () => {
  const { code, output } = await start({ WS_TOKEN_SECRET: 'too-short-secret-9f3k' });
  expect(code).toBe(2);
  expect(output).toContain('WS_TOKEN_SECRET');
  expect(output).not.toContain('too-short-secret-9f3k');
}, 60_000);

it('an invalid DATABASE_URL is named without its password, and without a stack trace', async () => {
  const { code, output } = await start({ DATABASE_URL: 'postgres://vigil:pg-start-secret@db.example:99999/vigil' });
  expect(code).toBe(2);
  expect(output).toContain('DATABASE_URL');
  expect(output).not.toContain('pg-start-secret');
  expect(output).not.toMatch(/\n\s+at /);
}, 60_000);

it('an unreachable database or Redis with a password in its URL: the start-up error shows neither password', async () => {
  const refused = await start({ DATABASE_URL: 'postgres://vigil:pg-refused-secret@127.0.0.1:1/vigil' });
  expect(refused.code).toBe(1);
  expect(refused.output).toContain('could not start');
  expect(refused.output).toContain('postgres://vigil:redacted@127.0.0.1:1/vigil');
  expect(refused.output).not.toContain('pg-refused-secret');

  const database = new URL(inject('postgresUrl'));
  database.password = 'pg-trusted-secret'; // trust authentication: accepted, and must never show
  const redis = await start({ DATABASE_URL: database.toString(), REDIS_URL: 'redis://:redis-refused-secret@127.0.0.1:1/0' });
  expect(redis.code).toBe(1);
  expect(redis.output).toContain('redis://:redacted@127.0.0.1:1');
  for (const secret of ['redis-refused-secret', 'pg-trusted-secret']) expect(redis.output).not.toContain(secret);
}, 120_000);
