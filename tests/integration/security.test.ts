import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 250));
  }
}

const databases = freshDatabases();
afterAll(() => databases.dropAll());

describe('security by default', () => {
  let hub: RunningHub;
  const clients: TestClient[] = [];
  const keys: Record<string, string> = {};
  let readKeyId = '';
  const call = (path: string, init: RequestInit & { key?: string } = {}) =>
    fetch(httpUrl(hub, path), { ...init, headers: { ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers as Record<string, string>), ...(init.key ? { 'x-api-key': init.key } : {}) } });

  beforeAll(async () => {
    // Its own database: the keys made here switch authentication on for every hub that shares it.
    hub = await startTestHub('services', { DATABASE_URL: await databases.create(), WS_AUTH_TIMEOUT_S: '1', HTTP_RATE_PER_S: '1000', CORS_ORIGINS: 'http://allowed.example' });
    // No key yet: anonymous on loopback may create the first admin key.
    const created = await call('/admin/keys', { method: 'POST', body: JSON.stringify({ name: 'ops', scopes: ['admin'] }) });
    expect(created.status).toBe(201);
    keys.admin = ((await created.json()) as { key: string }).key;
    for (const [name, scopes, devices] of [
      ['read', ['read'], undefined],
      ['ingest', ['ingest'], undefined],
      ['limited', ['read'], ['allowed-device']],
      ['revoked', ['read'], undefined],
    ] as const) {
      const r = await call('/admin/keys', { method: 'POST', key: keys.admin, body: JSON.stringify({ name, scopes, device_ids: devices }) });
      const body = (await r.json()) as { key: string; id: string };
      keys[name] = body.key;
      if (name === 'read') readKeyId = body.id;
      if (name === 'revoked') expect((await call(`/admin/keys/${body.id}`, { method: 'DELETE', key: keys.admin })).status).toBe(200);
    }
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await hub?.stop();
  });

  it('answers 401 without a key or with a bad, malformed or revoked one, 403 for a missing scope', async () => {
    expect((await call('/status/summary')).status).toBe(401);
    expect((await call('/status/summary', { key: 'vgl_nope' })).status).toBe(401);
    expect((await call('/status/summary', { key: `vgl_${'a'.repeat(12)}_${'b'.repeat(43)}` })).status).toBe(401);
    expect((await call('/status/summary', { key: keys.revoked })).status).toBe(401);
    expect((await call('/status/summary', { key: keys.read })).status).toBe(200);
    expect((await call('/status/summary', { headers: { authorization: `Bearer ${keys.read}` } })).status).toBe(200);
    expect((await call('/status', { method: 'POST', key: keys.read, body: '{}' })).status).toBe(403);
    expect((await call('/devices/x', { method: 'PUT', key: keys.read, body: '{}' })).status).toBe(403);
    expect((await call('/admin/keys', { key: keys.ingest })).status).toBe(403);
    expect((await call('/admin/keys', { key: keys.admin })).status).toBe(200);
    // Probes stay open.
    expect((await call('/healthz')).status).toBe(200);
    expect((await call('/health')).status).toBe(200);
  });

  it('stores keys only as hashes', async () => {
    const listed = JSON.stringify(await (await call('/admin/keys', { key: keys.admin })).json());
    for (const key of Object.values(keys)) expect(listed).not.toContain(key.slice('vgl_'.length + 13));
  });

  it('takes HTTP ingest through the same pipeline as MQTT', async () => {
    const id = `http-${randomSuffix()}`;
    const client = await TestClient.connect(wsUrl(hub));
    clients.push(client);
    expect(await client.request({ type: 'auth', token: keys.read }, 1)).toEqual({ type: 'ack', id: 1 });
    await client.request({ type: 'subscribe_device', device_id: id }, 2);
    const posted = await call('/status', { method: 'POST', key: keys.ingest, body: JSON.stringify({ device_id: id, timestamp: new Date(Date.now() - 60_000).toISOString(), battery_level: 76, rssi: -60, online: true }) });
    expect(await posted.json()).toEqual({ status: 'success', message: 'Device status updated successfully', device_id: id });
    const update = await client.next((f) => f.type === 'device_update');
    expect(update.data).toMatchObject({ battery_level: 76, rssi: -60 });
    expect(await (await call(`/status/${id}`, { key: keys.read })).json()).toMatchObject({ device_id: id, online: true, battery_level: 76 });
  });

  it('answers a catalogue of bad inputs with the right status and stores nothing', async () => {
    const cases: [string, number][] = [
      ['{"device_id": "x", "battery_level": ', 400],
      [JSON.stringify({ device_id: 'x', battery_level: 'full' }), 422],
      [JSON.stringify({ device_id: 'x', battery_level: 101 }), 422],
      [JSON.stringify({ device_id: 'ünïcødé', battery_level: 50 }), 422],
      [JSON.stringify({ device_id: '../../etc/passwd', battery_level: 50 }), 422],
      [JSON.stringify({ device_id: "x'; DROP TABLE telemetry; --", battery_level: 50 }), 422],
      [JSON.stringify({ device_id: 'x'.repeat(129) }), 422],
      [JSON.stringify({ battery_level: 50 }), 422],
      [JSON.stringify({ device_id: 'future', timestamp: '2099-01-01T00:00:00Z' }), 422],
      // A string reading is skipped and counted, as over MQTT (docs/presence.md#fleets-as-they-are); metrics that are no object are refused.
      [JSON.stringify({ device_id: 'x', metrics: 'hot' }), 422],
      [JSON.stringify({ device_id: 'x', metrics: { a: Object.fromEntries([...Array(65).keys()].map((k) => [`m${k}`, k])) } }), 422],
      [JSON.stringify({ device_id: 'x', pad: 'y'.repeat(70_000) }), 413],
    ];
    for (const [body, status] of cases) {
      const r = await call('/status', { method: 'POST', key: keys.ingest, body });
      expect(r.status, body.slice(0, 60)).toBe(status);
      if (status === 422) expect(((await r.json()) as { detail: unknown[] }).detail.length).toBeGreaterThan(0);
    }
    const validation = (await (await call('/status', { method: 'POST', key: keys.ingest, body: JSON.stringify({ device_id: 'x', battery_level: 101 }) })).json()) as { detail: { loc: string[] }[] };
    expect(validation.detail[0]!.loc).toEqual(['body', 'battery_level']);
    for (const id of ['x', 'future']) expect((await call(`/status/${id}`, { key: keys.read })).status).toBe(404);
    expect((await call('/status', { method: 'GET', key: keys.ingest })).status).toBe(405);
  });

  it('survives a header flood and keeps serving', async () => {
    const status = await new Promise<number | string>((resolve) => {
      const headers: Record<string, string> = {};
      for (let i = 0; i < 200; i++) headers[`x-flood-${i}`] = 'z'.repeat(200);
      const r = request(httpUrl(hub, '/healthz'), { headers }, (res) => resolve(res.statusCode ?? 0));
      r.on('error', (e) => resolve(e.message));
      r.end();
    });
    expect(status).not.toBe(200);
    expect((await call('/healthz')).status).toBe(200);
  });

  it('sends the security headers, echoes request ids, and allows only listed origins', async () => {
    const r = await call('/healthz', { headers: { 'x-request-id': 'req-123', origin: 'http://allowed.example' } });
    expect(r.headers.get('x-request-id')).toBe('req-123');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.headers.get('strict-transport-security')).toContain('max-age');
    expect(r.headers.get('access-control-allow-origin')).toBe('http://allowed.example');
    expect((await call('/healthz', { headers: { origin: 'http://evil.example' } })).headers.get('access-control-allow-origin')).toBeNull();
    expect((await call('/status/summary', { method: 'OPTIONS', headers: { origin: 'http://allowed.example' } })).status).toBe(204);
    expect((await call('/status/summary', { method: 'OPTIONS', headers: { origin: 'http://evil.example' } })).status).toBe(403);
    expect((await call('/healthz')).headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
  });

  it('WebSocket: auth by message, by short-lived token, and per-device restrictions', async () => {
    const anon = await TestClient.connect(wsUrl(hub));
    clients.push(anon);
    expect((await anon.request({ type: 'subscribe_device', device_id: 'd' }, 1)).error).toMatchObject({ code: 'unauthenticated' });
    expect(await anon.waitClose(3000)).toBe(4401);

    const token = (await (await call('/ws-token', { method: 'POST', key: keys.read })).json()) as { token: string };
    const viaToken = await TestClient.connect(`${wsUrl(hub)}?token=${encodeURIComponent(token.token)}`);
    clients.push(viaToken);
    expect((await viaToken.request({ type: 'subscribe_device', device_id: 'd1' }, 1)).type).toBe('ack');

    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${wsUrl(hub)}?token=forged.123.abc`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
    });
    expect(refused).toBe(401);

    const limited = await TestClient.connect(wsUrl(hub));
    clients.push(limited);
    await limited.request({ type: 'auth', token: keys.limited }, 1);
    expect((await limited.request({ type: 'subscribe_device', device_id: 'allowed-device' }, 2)).type).toBe('ack');
    expect((await limited.request({ type: 'subscribe_device', device_id: 'other' }, 3)).error).toMatchObject({ code: 'forbidden' });
    expect((await limited.request({ type: 'subscribe_all' }, 4)).error).toMatchObject({ code: 'forbidden' });
    expect((await call('/status/other', { key: keys.limited })).status).toBe(403);

    const bad = await TestClient.connect(wsUrl(hub));
    clients.push(bad);
    expect((await bad.request({ type: 'auth', token: 'wrong' }, 1)).error).toMatchObject({ code: 'invalid_token' });
    expect(await bad.waitClose()).toBe(4401);
  });

  it('lists, filters, pages and deletes devices', async () => {
    const ids = [`list-a-${randomSuffix()}`, `list-b-${randomSuffix()}`];
    for (const id of ids) await call('/status', { method: 'POST', key: keys.ingest, body: JSON.stringify({ device_id: id, battery_level: 50 }) });
    await call(`/devices/${ids[0]}`, { method: 'PUT', key: keys.admin, body: JSON.stringify({ type: 'meter', name: 'Meter A' }) });
    const typed = (await (await call('/devices?type=meter', { key: keys.admin })).json()) as { devices: { device_id: string; name: string; status: string }[]; total: number };
    expect(typed.devices.map((d) => [d.device_id, d.name, d.status])).toEqual([[ids[0], 'Meter A', 'online']]);
    const paged = (await (await call('/devices?status=online&limit=1&offset=0', { key: keys.admin })).json()) as { devices: unknown[]; total: number };
    expect(paged.devices).toHaveLength(1);
    expect(paged.total).toBeGreaterThanOrEqual(2);
    expect((await call('/devices?status=sleepy', { key: keys.admin })).status).toBe(422);
    expect((await call(`/devices/${ids[1]}`, { method: 'DELETE', key: keys.read })).status).toBe(403);
    expect((await call(`/devices/${ids[1]}`, { method: 'DELETE', key: keys.admin })).status).toBe(200);
    expect((await call(`/devices/${ids[1]}`, { key: keys.admin })).status).toBe(404);
  });

  it('creates and revokes keys with the CLI, which the running hub picks up', async () => {
    const run = (args: string[]) =>
      execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/keys.ts', ...args], {
        cwd: new URL('../..', import.meta.url).pathname,
        env: { ...process.env, DATABASE_URL: hub.config.DATABASE_URL },
        encoding: 'utf8',
      });
    const created = run(['create', '--scope', 'read', '--name', 'cli-made']);
    const token = created.split('\n')[1]!;
    expect(token).toMatch(/^vgl_/);
    const id = /created key (\S+)/.exec(created)![1]!;
    await waitUntil(async () => (await call('/status/summary', { key: token })).status === 200);
    expect(run(['list'])).toContain('cli-made');
    run(['revoke', id]);
    await waitUntil(async () => (await call('/status/summary', { key: token })).status === 401);
  });

  it('revoking a key locks it out at once', async () => {
    expect((await call('/status/summary', { key: keys.read })).status).toBe(200);
    expect((await call(`/admin/keys/${readKeyId}`, { method: 'DELETE', key: keys.admin })).status).toBe(200);
    expect((await call('/status/summary', { key: keys.read })).status).toBe(401);
  });
});

it('rate-limits per key or address with 429 and Retry-After', async () => {
  const hub = await startTestHub('embedded', { HTTP_RATE_PER_S: '2', HTTP_RATE_BURST: '5' });
  try {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 8; i++) {
      const r = await fetch(httpUrl(hub, '/status/summary'));
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers.get('retry-after');
    }
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.at(-1)).toBe(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  } finally {
    await hub.stop();
  }
});

it('refuses to serve a public interface without keys unless ALLOW_ANONYMOUS=true', async () => {
  await expect(startTestHub('embedded', { HOST: '0.0.0.0' })).rejects.toThrow(/ALLOW_ANONYMOUS=true/);
  const open = await startTestHub('embedded', { HOST: '0.0.0.0', ALLOW_ANONYMOUS: 'true' });
  await open.stop();
});

it('publishes an OpenAPI 3 document built from the validating schemas, and a page that renders it', async () => {
  const hub = await startTestHub('embedded');
  try {
    const doc = (await (await fetch(httpUrl(hub, '/openapi.json'))).json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: { 'application/json': { schema: { properties: Record<string, { maximum?: number }> } } } } }>> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/status', '/status/{device_id}', '/devices/{device_id}/commands', '/alerts']));
    // The same zod schema that answers 422 for battery_level 101 documents its maximum.
    expect(doc.paths['/status']!.post!.requestBody!.content['application/json'].schema.properties.battery_level!.maximum).toBe(100);
    const page = await fetch(httpUrl(hub, '/docs'));
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('/openapi.json');
  } finally {
    await hub.stop();
  }
});
