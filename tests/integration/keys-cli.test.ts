import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { freshDatabases } from '../helpers/fresh-database.js';

/** `npm run keys -- --help` printed a stack trace: usage on request, one-line errors with exit code 2. */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const databases = freshDatabases();
afterAll(() => databases.dropAll());

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function keys(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/keys.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

/** No database is needed to print usage or refuse bad arguments: one that does not answer proves it. */
const NO_DATABASE = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' };

it.each([['--help'], ['-h'], ['help'], ['list', '--help']])('%s prints usage and exits 0', async (...args) => {
  const run = await keys(args, NO_DATABASE);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('usage: npm run keys -- <command>');
  expect(run.stdout).toMatch(/create --scope read\|ingest\|command\|admin/);
  expect(run.stdout).toContain('revoke ID');
  expect(run.stderr).toBe('');
}, 60_000);

it.each([
  [['bogus'], 'unknown command "bogus"'],
  [['--bogus'], 'keys: unknown option --bogus (see npm run keys -- --help)\n'],
  [['-x', 'list'], 'keys: unknown option -x (see npm run keys -- --help)\n'],
  [['create', '--scope'], 'keys: option --scope needs a value (see npm run keys -- --help)\n'],
  [['list', '--help=yes'], 'keys: option --help takes no value (see npm run keys -- --help)\n'],
  [[], 'no command given'],
  [['revoke'], 'revoke needs a key id'],
  [['list', 'extra'], 'unexpected argument "extra"'],
  // Refused as POST /admin/keys refuses them, before any database is opened.
  [['create', '--scope', 'read', '--name', 'x', '--devices', 'ok,bad/id'], '--devices (entry 1): device ids are 1-128 characters'],
  [['create', '--scope', 'read', '--name', 'x', '--devices', ''], '--devices (entry 0)'],
  [['create', '--scope', 'read', '--name', 'x', '--devices', Array.from({ length: 10_001 }, (_, i) => `d${i}`).join(',')], '--devices'],
  [['create', '--scope', 'read', '--name', 'n'.repeat(101)], '--name'],
  [['create', '--scope', 'root', '--name', 'x'], 'unknown scope: root'],
])('%j is a one-line error with exit code 2', async (args, message) => {
  const run = await keys(args, NO_DATABASE);
  expect(run.code).toBe(2);
  expect(run.stdout).toBe('');
  if (message.endsWith('\n')) expect(run.stderr).toBe(message); // the whole line, exactly
  else expect(run.stderr).toContain(message);
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  // Every quote closed (parseArgs's own text for an unknown option left one open).
  expect(run.stderr.split('"').length % 2, 'balanced double quotes').toBe(1);
  expect(run.stderr.replace(/\b'\b/g, '').split("'").length % 2, 'balanced single quotes').toBe(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}, 60_000);

it('still creates, lists and revokes keys; a bad scope is a one-line error', async () => {
  const env = { DATABASE_URL: await databases.create() };
  const badScope = await keys(['create', '--scope', 'root', '--name', 'x'], env);
  expect(badScope.code).toBe(2);
  expect(badScope.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(badScope.stderr).toContain('unknown scope: root');
  const created = await keys(['create', '--scope', 'read', '--name', 'cli'], env);
  expect(created.code).toBe(0);
  const id = /created key (\S+)/.exec(created.stdout)![1]!;
  expect((await keys(['list'], env)).stdout).toContain(`${id}  cli  read`);
  expect((await keys(['revoke', id], env)).stdout).toContain(`revoked ${id}`);
  const again = await keys(['revoke', id], env);
  expect(again.code).toBe(2);
  expect(again.stderr).toContain(`no key ${id}`);
}, 120_000);
