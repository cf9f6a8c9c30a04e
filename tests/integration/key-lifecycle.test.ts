import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { TestClient } from '../helpers/ws-client.js';
import { eventually, letTimePass } from '../helpers/wait.js';

const run = promisify(execFile);
const databases = freshDatabases();
afterAll(() => databases.dropAll());

/** Revocation and token expiry end live sessions on every instance; authentication never switches off again. */
describe('key lifecycle', () => {
  let databaseUrl = '';
  let a: RunningHub;
  let b: RunningHub;
  let admin = '';
  let adminId = '';
  let firstKeyAt = 0;
  const anonymous: TestClient[] = [];
  const clients: TestClient[] = [];
  const env = { HTTP_RATE_PER_S: '100000', HTTP_RATE_BURST: '100000', WS_TOKEN_TTL_S: '2', KEY_RELOAD_MS: '1000', WS_TOKEN_SECRET: 'k'.repeat(40) };

  const call = (hub: RunningHub, path: string, init: { method?: string; key?: string; body?: unknown } = {}) =>
    fetch(httpUrl(hub, path), {
      method: init.method ?? 'GET',
      headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.key ? { 'x-api-key': init.key } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  const makeKey = async (scopes: string[]) => (await (await call(a, '/admin/keys', { method: 'POST', key: admin, body: { name: 'k', scopes } })).json()) as { id: string; key: string };
  const session = async (hub: RunningHub, token: string, viaQuery = false) => {
    const client = await TestClient.connect(viaQuery && token ? `${wsUrl(hub)}?token=${encodeURIComponent(token)}` : wsUrl(hub));
    clients.push(client);
    if (!viaQuery) expect(await client.request({ type: 'auth', token }, 1)).toEqual({ type: 'ack', id: 1 });
    expect((await client.request({ type: 'subscribe_device', device_id: 'lifecycle-d' }, 2)).type).toBe('ack');
    return client;
  };
  const cli = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'src/cli/keys.ts', ...args], { cwd: new URL('../..', import.meta.url).pathname, env: { ...process.env, DATABASE_URL: databaseUrl }, encoding: 'utf8' });

  beforeAll(async () => {
    databaseUrl = await databases.create();
    // Two instances on one database (as in cluster mode): each learns of the other's revocations.
    a = await startTestHub('services', { ...env, DATABASE_URL: databaseUrl });
    b = await startTestHub('services', { ...env, DATABASE_URL: databaseUrl });
    // Sessions opened while no key exists (the hub serves anonymously on loopback).
    for (const hub of [a, b]) anonymous.push(await session(hub, '', true));
    firstKeyAt = Date.now();
    const created = (await (await call(a, '/admin/keys', { method: 'POST', body: { name: 'root', scopes: ['admin'] } })).json()) as { id: string; key: string };
    admin = created.key;
    adminId = created.id;
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('ends anonymous sessions (4401) on every instance once the first key exists', async () => {
    for (const client of anonymous) expect(await client.waitClose(3000)).toBe(4401);
    expect(Date.now() - firstKeyAt).toBeLessThan(2500);
  });

  it('ends the sessions of a revoked key with 4410, here at once and on another instance within a second', async () => {
    const key = await makeKey(['read', 'command']);
    // B learns of the key at its next reload.
    const until = Date.now() + 5000;
    while ((await call(b, '/status/summary', { key: key.key })).status !== 200) {
      if (Date.now() > until) throw new Error('instance B never accepted the key');
      await new Promise((r) => setTimeout(r, 100));
    }
    const [onA, onB] = [await session(a, key.key), await session(b, key.key)];
    const revokedAt = Date.now();
    expect((await call(a, `/admin/keys/${key.id}`, { method: 'DELETE', key: admin })).status).toBe(200);
    expect(await onA.waitClose(1000)).toBe(4410);
    const here = Date.now() - revokedAt;
    expect(await onB.waitClose(2000)).toBe(4410);
    const there = Date.now() - revokedAt;
    expect(there).toBeLessThan(1500);
    expect(here).toBeLessThan(500);
    console.info(`revocation ended the session on the same instance after ${here} ms, on another after ${there} ms`);
  });

  it('ends the sessions of a key revoked by the CLI (another process) within a second of it', async () => {
    const key = await makeKey(['read']);
    await eventually('instance B accepts the key', async () => (await call(b, '/status/summary', { key: key.key })).status === 200);
    const [onA, onB] = [await session(a, key.key), await session(b, key.key)];
    await cli('revoke', key.id);
    const done = Date.now();
    expect(await onA.waitClose(2000)).toBe(4410);
    expect(await onB.waitClose(2000)).toBe(4410);
    expect(Date.now() - done).toBeLessThan(1500);
  });

  it('ends a ws-token session when the token expires (4440) unless the client renews it with auth', async () => {
    const key = await makeKey(['read']);
    const token = async () => ((await (await call(a, '/ws-token', { method: 'POST', key: key.key })).json()) as { token: string; expires_at: string });
    const first = await token();
    const lapsing = await session(a, first.token, true);
    const renewing = await session(a, first.token, true);
    await letTimePass(1000, 'a second on: the fresh token expires a second after the first');
    const fresh = await token();
    expect(await renewing.request({ type: 'auth', token: fresh.token }, 3)).toEqual({ type: 'ack', id: 3 });
    expect(await lapsing.waitClose(3000)).toBe(4440);
    expect(Date.now() - Date.parse(first.expires_at)).toBeLessThan(1200);
    expect(renewing.closeCode).toBeNull();
    // A session keeps its key: a token of another key is refused.
    const otherKey = await makeKey(['read']);
    const foreign = (await (await call(a, '/ws-token', { method: 'POST', key: otherKey.key })).json()) as { token: string };
    expect((await renewing.request({ type: 'auth', token: foreign.token }, 4)).error).toMatchObject({ code: 'forbidden' });
    expect(await renewing.waitClose(3000)).toBe(4440);
  });

  it('refuses to revoke the last admin key over the API (409)', async () => {
    const refused = await call(a, `/admin/keys/${adminId}`, { method: 'DELETE', key: admin });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: { code: 'last_admin_key' } });
    const second = await makeKey(['admin']);
    expect((await call(a, `/admin/keys/${adminId}`, { method: 'DELETE', key: second.key })).status).toBe(200);
    expect((await call(a, `/admin/keys/${second.id}`, { method: 'DELETE', key: second.key })).status).toBe(409);
    admin = second.key;
    adminId = second.id;
  });

  it('keeps authentication on after every key is gone (CLI), here, on the other instance and after a restart', async () => {
    for (const k of (await (await call(a, '/admin/keys', { key: admin })).json() as { keys: { id: string }[] }).keys) await cli('revoke', k.id);
    const until = Date.now() + 5000;
    while ((await call(a, '/status/summary', { key: admin })).status !== 401) {
      if (Date.now() > until) throw new Error('the admin key still works');
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const hub of [a, b]) {
      expect((await call(hub, '/status/summary')).status).toBe(401);
      expect((await call(hub, '/admin/keys', { method: 'POST', body: { name: 'again', scopes: ['admin'] } })).status).toBe(401);
    }
    await b.stop();
    b = await startTestHub('services', { ...env, DATABASE_URL: databaseUrl });
    expect((await call(b, '/status/summary')).status).toBe(401);
    // The way back in: the CLI.
    const { stdout } = await cli('create', '--scope', 'admin', '--name', 'recovered');
    const recovered = stdout.split('\n')[1]!;
    // B learns of it at its next reload (KEY_RELOAD_MS, 1 s): within 1.2 s, as before.
    await eventually('instance B accepts the recovered key', async () => (await call(b, '/status/summary', { key: recovered })).status === 200, 1200).catch(() => undefined);
    expect((await call(b, '/status/summary', { key: recovered })).status).toBe(200);
  });
});
