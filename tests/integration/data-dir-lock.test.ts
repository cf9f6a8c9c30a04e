import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { LOCK_FILE } from '../../src/storage/data-dir-lock.js';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';

/** Two processes on one PGlite DATA_DIR lost data: the second is refused, naming the first. */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const hubs: HubProcess[] = [];
const embedded = (dataDir: string) => ({ HOST: '127.0.0.1', PORT: '0', MQTT_PORT: '0', DATA_DIR: dataDir });
/** PGlite's first start (initdb, migrations) is slow on a loaded two-core machine. */
const START_MS = 120_000;

/** Runs a CLI of the hub's (`src/cli/keys.ts list`…) to its end. */
function run(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

afterEach(async () => {
  for (const hub of hubs.splice(0)) await hub.stop();
});

it('refuses a second hub and the keys CLI on a DATA_DIR a hub holds, naming its pid and the REST routes; data survives', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'vigil-lock-'));
  const first = await spawnHub(embedded(dataDir), START_MS);
  hubs.push(first);
  const pid = first.child.pid!;
  expect(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8'))).toMatchObject({ pid, holder: 'a Vigil hub' });

  const created = await fetch(`http://127.0.0.1:${first.port}/admin/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'kept', scopes: ['admin'] }) });
  expect(created.status).toBe(201);

  const second = await spawnHub(embedded(dataDir), START_MS).then(
    (hub) => {
      hubs.push(hub);
      return null;
    },
    (error: Error) => error.message,
  );
  expect(second).toContain(`is in use by process ${pid}`);
  expect(second).toContain('POST /admin/keys');

  const keys = await run('src/cli/keys.ts', ['list'], { DATA_DIR: dataDir });
  expect(keys.code).toBe(2);
  expect(keys.output).toContain(`is in use by process ${pid} (a Vigil hub`);
  expect(keys.output).toContain('GET /admin/keys');
  expect(keys.output).not.toMatch(/\n\s+at /); // a message, not a stack trace

  // The first hub served throughout; stopped, it releases the lock and the CLI sees its data.
  expect((await fetch(`http://127.0.0.1:${first.port}/healthz`)).status).toBe(200);
  expect(await first.stop()).toBe(0);
  expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  const listed = await run('src/cli/keys.ts', ['list'], { DATA_DIR: dataDir });
  expect(listed.code, listed.output).toBe(0);
  expect(listed.output).toContain('kept');
}, 400_000);

it('takes over the lock of a process that is gone (SIGKILL, crash)', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'vigil-lock-'));
  const killed = await spawnHub(embedded(dataDir), START_MS);
  await killed.stop('SIGKILL');
  expect(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')).pid).toBe(killed.child.pid);
  const next = await spawnHub(embedded(dataDir), START_MS);
  hubs.push(next);
  expect(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')).pid).toBe(next.child.pid);

  // A lock left half-written long ago (its writer died mid-write) is stale too.
  const other = mkdtempSync(join(tmpdir(), 'vigil-lock-'));
  writeFileSync(join(other, LOCK_FILE), '');
  const old = new Date(Date.now() - 60_000);
  utimesSync(join(other, LOCK_FILE), old, old);
  const migrated = await run('src/cli/migrate.ts', [], { DATA_DIR: other });
  expect(migrated.code, migrated.output).toBe(0);
  expect(existsSync(join(other, LOCK_FILE))).toBe(false);
}, 400_000);
