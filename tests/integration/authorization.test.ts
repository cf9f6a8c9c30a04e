import { SignJWT, type JWTPayload } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardRoutes } from '../../src/transport/http/static-files.js';
import type { RunningHub } from '../../src/app.js';
import { WS_POLICY } from '../../src/hub/session.js';
import type { Scope } from '../../src/security/api-keys.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';
import { letTimePass } from '../helpers/wait.js';

/**
 * The authorization matrix, generated from the hub's own route table and WebSocket message table:
 * every route and message × every kind of caller → the answer this file expects. The expectations
 * are written here, apart from src/security/policy.ts, so a wrong policy entry fails as surely as
 * a missing one; a route or message this file does not know fails the test.
 */
type Rule = 'device' | 'filtered' | 'fleet' | 'none';
interface Expected {
  readonly scope: Scope | null;
  readonly devices: Rule;
}

const PUBLIC: Expected = { scope: null, devices: 'none' };
const read = (devices: Rule): Expected => ({ scope: 'read', devices });

/** What each route must demand. Keys routes count their target key's devices as the device. */
const EXPECTED: Record<string, Expected> = {
  'GET /healthz': PUBLIC,
  'GET /readyz': PUBLIC,
  'GET /health': PUBLIC,
  'GET /openapi.json': PUBLIC,
  'GET /': PUBLIC,
  'GET /app.js': PUBLIC,
  'GET /app.css': PUBLIC,
  'GET /docs': PUBLIC,
  'GET /docs.js': PUBLIC,
  'GET /docs.css': PUBLIC,
  'GET /vigil-client.js': PUBLIC,
  'GET /metrics': read('fleet'),
  'POST /status': { scope: 'ingest', devices: 'device' },
  'GET /status/summary': read('filtered'),
  'POST /status/batch': read('device'),
  'GET /status/{device_id}': read('device'),
  'GET /status/{device_id}/history': read('device'),
  'GET /devices': read('filtered'),
  'GET /devices/{device_id}': read('device'),
  'PUT /devices/{device_id}': { scope: 'admin', devices: 'device' },
  'DELETE /devices/{device_id}': { scope: 'admin', devices: 'device' },
  'GET /devices/{device_id}/metrics': read('device'),
  'GET /devices/{device_id}/metrics/summary': read('device'),
  'GET /devices/{device_id}/uptime': read('device'),
  'GET /devices/{device_id}/health': read('device'),
  'GET /health/devices': read('filtered'),
  'GET /fleet/history': read('fleet'),
  'GET /metric-units': PUBLIC,
  'GET /alerts': read('filtered'),
  'POST /alerts/{alert_id}/ack': { scope: 'command', devices: 'device' },
  'POST /devices/{device_id}/commands': { scope: 'command', devices: 'device' },
  'GET /devices/{device_id}/commands': read('device'),
  'POST /admin/keys': { scope: 'admin', devices: 'device' },
  'GET /admin/keys': { scope: 'admin', devices: 'filtered' },
  'DELETE /admin/keys/{key_id}': { scope: 'admin', devices: 'device' },
  'GET /admin/notifications': { scope: 'admin', devices: 'fleet' },
  'POST /admin/notifications/replay': { scope: 'admin', devices: 'fleet' },
  'POST /ws-token': read('none'),
  'GET /rules': { scope: 'admin', devices: 'fleet' },
  'PUT /rules': { scope: 'admin', devices: 'fleet' },
  'DELETE /rules': { scope: 'admin', devices: 'fleet' },
};
// The dashboard's files (every file of public/ and the vendored libraries) are public by design:
// the pages hold no data, the API they call needs the key (static-files.ts).
for (const file of dashboardRoutes()) EXPECTED[`${file.method} ${file.path}`] ??= PUBLIC;

const WS_EXPECTED: Record<string, Expected | null> = {
  subscribe_device: read('device'),
  unsubscribe_device: null,
  subscribe_devices: read('device'),
  unsubscribe_devices: null,
  subscribe_all: read('fleet'),
  unsubscribe_all: null,
  ping: null,
  ack_alert: { scope: 'command', devices: 'device' },
  auth: null,
};

/** Bodies that pass validation, for the device a case is about. */
const BODIES: Record<string, (device: string) => unknown> = {
  'POST /status': (d) => ({ device_id: d, battery_level: 50 }),
  'POST /status/batch': (d) => ({ device_ids: [d] }),
  'PUT /devices/{device_id}': () => ({ name: 'matrix' }),
  'POST /alerts/{alert_id}/ack': () => ({ by: 'matrix' }),
  'POST /devices/{device_id}/commands': () => ({ command: 'noop' }),
  'POST /admin/keys': (d) => ({ name: 'made-by-matrix', scopes: ['read'], device_ids: [d] }),
  'PUT /rules': () => ({ rules: [] }),
};

const SCOPED = ['read', 'ingest', 'command', 'admin'] as const;
/** JWTs go through the same policy: `jwt-read` must be answered as `read`, `jwt-limited` as `limited`. */
const JWT_CALLERS = ['jwt-read', 'jwt-limited'] as const;
const JWT_REFUSED = ['jwt-expired', 'jwt-forged'] as const;
type Caller = 'none' | 'bad' | 'revoked' | 'expired-token' | (typeof SCOPED)[number] | 'limited' | (typeof JWT_CALLERS)[number] | (typeof JWT_REFUSED)[number];
const JWT_SECRET = 'j'.repeat(40);
const jwt = (claims: JWTPayload, secret = JWT_SECRET) =>
  new SignJWT({ sub: `matrix-${randomSuffix()}`, exp: Math.floor(Date.now() / 1000) + 3600, ...claims }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
/** The key caller a JWT caller must be answered like. */
const asKeyCaller = (caller: Caller): Caller => (caller === 'jwt-read' ? 'read' : caller === 'jwt-limited' ? 'limited' : caller);

const databases = freshDatabases();
afterAll(() => databases.dropAll());

describe('authorization matrix', () => {
  let hub: RunningHub;
  const own = `own-${randomSuffix()}`;
  const other = `other-${randomSuffix()}`;
  const keys = {} as Record<Caller, string>;
  const alertOf: Record<string, string> = {};
  const clients: TestClient[] = [];

  const call = (path: string, init: { method?: string; key?: string; body?: unknown } = {}) =>
    fetch(httpUrl(hub, path), {
      method: init.method ?? 'GET',
      headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.key ? { 'x-api-key': init.key } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  const makeKey = async (scopes: readonly string[], devices?: readonly string[]) => {
    const r = await call('/admin/keys', { method: 'POST', key: keys.admin, body: { name: `k-${randomSuffix()}`, scopes, device_ids: devices } });
    expect(r.status).toBe(201);
    return (await r.json()) as { id: string; key: string };
  };

  beforeAll(async () => {
    hub = await startTestHub('services', { DATABASE_URL: await databases.create(), HTTP_RATE_PER_S: '100000', HTTP_RATE_BURST: '100000', WS_TOKEN_TTL_S: '1', JWT_HS256_SECRET: JWT_SECRET });
    // A configured JWT secret switches authentication on: the first key is made with an admin JWT.
    expect((await call('/admin/keys', { method: 'POST', body: { name: 'root', scopes: ['admin'] } })).status).toBe(401);
    const first = await call('/admin/keys', { method: 'POST', key: await jwt({ scope: 'admin' }), body: { name: 'root', scopes: ['admin'] } });
    keys.admin = ((await first.json()) as { key: string }).key;
    for (const scope of SCOPED.filter((s) => s !== 'admin')) keys[scope] = (await makeKey([scope])).key;
    keys.limited = (await makeKey(['read', 'ingest', 'command', 'admin'], [own])).key;
    await makeKey(['read'], [other]); // a key the limited admin must not see
    const revoked = await makeKey(['admin']);
    keys.revoked = revoked.key;
    expect((await call(`/admin/keys/${revoked.id}`, { method: 'DELETE', key: keys.admin })).status).toBe(200);
    keys.bad = `vgl_${'a'.repeat(12)}_${'b'.repeat(43)}`;
    keys.none = '';
    keys['jwt-read'] = await jwt({ scope: 'read' });
    keys['jwt-limited'] = await jwt({ scope: 'read ingest command admin', vigil_devices: [own] });
    keys['jwt-expired'] = await jwt({ scope: 'admin', exp: Math.floor(Date.now() / 1000) - 60 });
    keys['jwt-forged'] = await jwt({ scope: 'admin' }, 'f'.repeat(40));
    const token = (await (await call('/ws-token', { method: 'POST', key: keys.admin })).json()) as { token: string; expires_at: string };
    keys['expired-token'] = token.token;
    // Both devices exist and have an active alert (low battery).
    for (const device of [own, other]) {
      expect((await call('/status', { method: 'POST', key: keys.admin, body: { device_id: device, battery_level: 3 } })).status).toBe(200);
    }
    const until = Date.now() + 10_000;
    while (alertOf[own] === undefined || alertOf[other] === undefined) {
      if (Date.now() > until) throw new Error('no alerts raised');
      const listed = (await (await call('/alerts?state=active', { key: keys.admin })).json()) as { alerts: { alert_id: string; device_id: string }[] };
      for (const a of listed.alerts) alertOf[a.device_id] = a.alert_id;
      await new Promise((r) => setTimeout(r, 100));
    }
    await letTimePass(Math.max(0, Date.parse(token.expires_at) + 50 - Date.now()), 'the token expires');
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await hub?.stop();
  });

  /** What a caller must get: 'auth' (401), 'forbidden' (403), or 'allowed' (anything else). */
  function expected(rule: Expected, given: Caller, device: string): 'auth' | 'forbidden' | 'allowed' {
    const caller = asKeyCaller(given);
    if (rule.scope === null) return 'allowed';
    if (caller === 'none' || caller === 'bad' || caller === 'revoked' || caller === 'expired-token' || caller === 'jwt-expired' || caller === 'jwt-forged') return 'auth';
    if (caller !== 'limited' && caller !== 'admin' && caller !== rule.scope) return 'forbidden';
    if (caller !== 'limited') return 'allowed';
    if (rule.devices === 'fleet') return 'forbidden';
    if (rule.devices === 'device' && device !== own) return 'forbidden';
    return 'allowed';
  }

  it('knows every route of the table, and every route of the table knows its policy', () => {
    const table = hub.routes.map((r) => `${r.method} ${r.path}`);
    expect(table.filter((r) => !(r in EXPECTED)), 'routes without an expected policy in this test').toEqual([]);
    expect(Object.keys(EXPECTED).filter((r) => !table.includes(r)), 'expected routes missing from the table').toEqual([]);
    for (const r of hub.routes) {
      const want = EXPECTED[`${r.method} ${r.path}`]!;
      if (want.scope === null) expect(r.action, `${r.method} ${r.path}`).toBe('public');
    }
    expect(Object.keys(WS_POLICY).sort()).toEqual(Object.keys(WS_EXPECTED).sort());
  });

  it('answers every route for every caller as the policy says', async () => {
    const callers: Caller[] = ['none', 'bad', 'revoked', 'expired-token', ...SCOPED, 'limited', ...JWT_CALLERS, ...JWT_REFUSED];
    // Deletions last, so every other route still finds the devices.
    const routes = [...hub.routes].sort((a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE'));
    const failures: string[] = [];
    for (const r of routes) {
      const rule = EXPECTED[`${r.method} ${r.path}`]!;
      for (const caller of callers) {
        for (const device of asKeyCaller(caller) === 'limited' ? [own, other] : [own]) {
          let path = r.path.replace('{device_id}', device).replace('{alert_id}', alertOf[device]!);
          if (path.includes('{key_id}')) path = path.replace('{key_id}', (await makeKey(['read'], [device])).id);
          const body = BODIES[`${r.method} ${r.path}`]?.(device);
          const response = await call(path, { method: r.method, key: keys[caller], body });
          const text = await response.text();
          const got = response.status === 401 ? 'auth' : response.status === 403 ? 'forbidden' : 'allowed';
          const want = expected(rule, caller, device);
          const label = `${r.method} ${path} as ${caller}${asKeyCaller(caller) === 'limited' ? ` (${device === own ? 'own' : 'other'} device)` : ''}`;
          if (got !== want) failures.push(`${label}: ${response.status} ${text.slice(0, 120)}, expected ${want}`);
          else if (want === 'allowed' && response.status >= 500) failures.push(`${label}: ${response.status} ${text.slice(0, 120)}`);
          // Aggregates answer a limited key with its own devices only.
          if (asKeyCaller(caller) === 'limited' && rule.devices === 'filtered' && text.includes(other)) failures.push(`${label}: the answer shows ${other}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('refuses a limited key a filter on another device, and a key broader than its creator', async () => {
    expect((await call(`/alerts?device_id=${other}`, { key: keys.limited })).status).toBe(403);
    expect((await call(`/alerts?device_id=${own}`, { key: keys.limited })).status).toBe(200);
    // A device-limited admin cannot mint an unlimited key, nor one with devices beyond its own.
    expect((await call('/admin/keys', { method: 'POST', key: keys.limited, body: { name: 'escalate', scopes: ['admin'] } })).status).toBe(403);
    expect((await call('/admin/keys', { method: 'POST', key: keys.limited, body: { name: 'escalate', scopes: ['read'], device_ids: [own, other] } })).status).toBe(403);
    // A read key cannot reach admin routes at all; a command key cannot create keys with more scopes.
    expect((await call('/admin/keys', { method: 'POST', key: keys.command, body: { name: 'escalate', scopes: ['command'] } })).status).toBe(403);
    // Every refusal is counted, whether the route, the body or the handler found the device.
    const count = async () => Number(/vigil_http_refused_total\{code="forbidden"\} (\d+)/.exec(await (await call('/metrics', { key: keys.admin })).text())?.[1] ?? 0);
    const before = await count();
    await call('/status', { method: 'POST', key: keys.limited, body: { device_id: other, battery_level: 50 } });
    await call(`/alerts/${alertOf[other]}/ack`, { method: 'POST', key: keys.limited, body: {} });
    await call(`/alerts?device_id=${other}`, { key: keys.limited });
    expect(await count()).toBe(before + 3);
  });

  it('subscribe_devices with one id the key may not read is refused whole, naming that id', async () => {
    const client = await TestClient.connect(wsUrl(hub));
    clients.push(client);
    expect(await client.request({ type: 'auth', token: keys.limited }, 1)).toMatchObject({ type: 'ack' });
    const refused = await client.request({ type: 'subscribe_devices', device_ids: [own, other] }, 2);
    expect(refused).toMatchObject({ type: 'error', id: 2, error: { code: 'forbidden' } });
    expect((refused.error as { message: string }).message).toContain(other);
    expect((refused.error as { message: string }).message).not.toContain(own);
    // Nothing was subscribed, not even the device it may read.
    expect(await client.request({ type: 'unsubscribe_devices', device_ids: [own] }, 3)).toEqual({ type: 'ack', id: 3, not_subscribed: [own] });
    expect(await client.request({ type: 'subscribe_devices', device_ids: [own] }, 4)).toEqual({ type: 'ack', id: 4 });
    await client.next((f) => f.type === 'snapshot' && f.device_id === own);
  });

  it('answers every WebSocket message for every caller as the policy says', async () => {
    const messages: Record<string, (device: string) => Record<string, unknown>> = {
      subscribe_device: (d) => ({ type: 'subscribe_device', device_id: d }),
      unsubscribe_device: (d) => ({ type: 'unsubscribe_device', device_id: d }),
      subscribe_devices: (d) => ({ type: 'subscribe_devices', device_ids: [d] }),
      unsubscribe_devices: (d) => ({ type: 'unsubscribe_devices', device_ids: [d] }),
      subscribe_all: () => ({ type: 'subscribe_all' }),
      unsubscribe_all: () => ({ type: 'unsubscribe_all' }),
      ping: () => ({ type: 'ping' }),
      ack_alert: (d) => ({ type: 'ack_alert', alert_id: alertOf[d] }),
      auth: () => ({ type: 'auth', token: keys.limited }),
    };
    expect(Object.keys(messages).sort()).toEqual(Object.keys(WS_POLICY).sort());
    const failures: string[] = [];
    let id = 1;
    for (const caller of [...SCOPED, 'limited', ...JWT_CALLERS] as const) {
      const client = await TestClient.connect(wsUrl(hub));
      clients.push(client);
      expect(await client.request({ type: 'auth', token: keys[caller] }, id++)).toMatchObject({ type: 'ack' });
      for (const [type, make] of Object.entries(messages)) {
        const rule = WS_EXPECTED[type]!;
        for (const device of asKeyCaller(caller) === 'limited' ? [own, other] : [own]) {
          const answer = await client.request(make(device), id++);
          const got = answer.type === 'error' && (answer.error as { code: string }).code === 'forbidden' ? 'forbidden' : 'allowed';
          // auth as another key is refused (a session keeps its key): not a policy answer.
          if (type === 'auth') continue;
          const want = rule === null ? 'allowed' : expected(rule, caller, device);
          if (got !== want) failures.push(`${type} (${device === own ? 'own' : 'other'}) as ${caller}: ${JSON.stringify(answer)}, expected ${want}`);
        }
      }
    }
    // No key: nothing but ping and auth; bad, revoked and expired credentials: refused outright.
    const anonymous = await TestClient.connect(wsUrl(hub));
    clients.push(anonymous);
    for (const [type, make] of Object.entries(messages)) {
      if (type === 'auth' || type === 'ping') continue;
      const answer = await anonymous.request(make(own), id++);
      if ((answer.error as { code?: string } | undefined)?.code !== 'unauthenticated') failures.push(`${type} without a key: ${JSON.stringify(answer)}`);
    }
    for (const caller of ['bad', 'revoked', 'expired-token', ...JWT_REFUSED] as const) {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${wsUrl(hub)}?token=${encodeURIComponent(keys[caller])}`);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
      });
      if (status !== 401) failures.push(`upgrade with a ${caller} credential: ${status}`);
      const client = await TestClient.connect(wsUrl(hub));
      clients.push(client);
      const answer = await client.request({ type: 'auth', token: keys[caller] }, id++);
      if ((answer.error as { code?: string } | undefined)?.code !== 'invalid_token') failures.push(`auth with a ${caller} credential: ${JSON.stringify(answer)}`);
      if ((await client.waitClose()) !== 4401) failures.push(`auth with a ${caller} credential did not close 4401`);
    }
    expect(failures).toEqual([]);
  });
});
