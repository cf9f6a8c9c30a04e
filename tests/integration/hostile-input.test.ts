import { connect as connectTcp } from 'node:net';
import { Redis } from 'ioredis';
import { connectAsync } from 'mqtt';
import postgres from 'postgres';
import WebSocket from 'ws';
import { afterAll, expect, it } from 'vitest';
import { freshDatabases } from '../helpers/fresh-database.js';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { HOSTILE_BYTES, HOSTILE_HEADERS, HOSTILE_JSON_TEXTS, HOSTILE_PATH_SEGMENTS, HOSTILE_QUERIES, generatedTexts } from '../helpers/hostile-values.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { steadyPublisher } from '../helpers/steady-publisher.js';
import { TestClient } from '../helpers/ws-client.js';

/*
 * The hardening suite's end-to-end fuzz: two hub processes in cluster mode on the real Mosquitto,
 * Redis and PostgreSQL take hostile input on every entry — MQTT (every topic kind, hostile device
 * ids), WebSocket (text, binary, every message type), HTTP (every route with hostile paths, queries,
 * headers and bodies) and the cluster bus (forwards, owner queries, fan-out channels) — while a
 * control device publishes steadily. Neither process may end, no answer may be a 500, and the control
 * device loses nothing: every message stored once and pushed to its followers on both instances.
 */
const run = randomSuffix();
const prefix = `h${run}/devices`;
const keyPrefix = `vigil-hostile:${run}:`;
const control = `${run}-control`;
const victim = `${run}-victim`;
const hubs: HubProcess[] = [];
// Its own database: the suite creates an admin key, which turns authentication on for good (docs/security.md).
const databases = freshDatabases();
const databaseUrl = await databases.create();
const sql = postgres(databaseUrl, { max: 1, onnotice: () => undefined });
const redis = new Redis(SERVICES.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });

afterAll(async () => {
  await Promise.all(hubs.map((h) => h.stop()));
  await sql.end();
  await databases.dropAll();
  redis.disconnect();
});

function env(name: string): Record<string, string> {
  return {
    MQTT_URL: SERVICES.mqttUrl,
    REDIS_URL: SERVICES.redisUrl,
    DATABASE_URL: databaseUrl,
    REDIS_KEY_PREFIX: keyPrefix,
    MQTT_TOPIC_PREFIX: prefix,
    CLUSTER_ENABLED: 'true',
    CLUSTER_INSTANCE_ID: `${name}-${run}`,
    PORT: '0',
    DATA_DIR: `/tmp/vigil-hostile-${run}-${name}`,
    LOG_LEVEL: 'info',
    // The fuzz sends far more than a client's fair share; the rate limits are tested elsewhere.
    HTTP_RATE_PER_S: '100000',
    HTTP_RATE_BURST: '100000',
    WS_MAX_MESSAGES_PER_S: '100000',
  };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One raw HTTP/1.1 request over TCP (no client-side URL normalisation); the status code, or 0 when the hub closed the connection without one. */
function rawHttp(port: number, method: string, target: string, headers: readonly (readonly [string, string])[], body = ''): Promise<number> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1');
    let received = '';
    const finish = () => {
      socket.destroy();
      const match = /^HTTP\/1\.1 (\d{3})/.exec(received);
      resolve(match ? Number(match[1]) : 0);
    };
    const timer = setTimeout(finish, 5000);
    socket.on('data', (d) => {
      received += d.toString('latin1');
      if (/\r\n\r\n/.test(received)) {
        clearTimeout(timer);
        finish();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      finish();
    });
    const names = new Set(headers.map(([n]) => n.toLowerCase()));
    const lines = [`${method} ${target} HTTP/1.1`];
    if (!names.has('host')) lines.push(`Host: 127.0.0.1:${port}`);
    if (!names.has('content-length')) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    for (const [n, v] of headers) lines.push(`${n}: ${v}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}

/** Every route the hub serves, with `{id}` where a path segment goes. */
const ROUTES: readonly (readonly [string, string])[] = [
  ['GET', '/healthz'], ['GET', '/readyz'], ['GET', '/metrics'], ['GET', '/health'], ['GET', '/openapi.json'], ['GET', '/docs'], ['GET', '/'],
  ['POST', '/status'], ['GET', '/status/summary'], ['GET', '/status/{id}'], ['GET', '/status/{id}/history'], ['POST', '/status/batch'],
  ['GET', '/devices'], ['GET', '/devices/{id}'], ['PUT', '/devices/{id}'], ['DELETE', '/devices/{id}'],
  ['GET', '/devices/{id}/metrics'], ['GET', '/devices/{id}/metrics/summary'], ['GET', '/devices/{id}/uptime'], ['GET', '/devices/{id}/health'],
  ['GET', '/devices/{id}/commands'], ['POST', '/devices/{id}/commands'],
  ['GET', '/health/devices'], ['GET', '/alerts'], ['POST', '/alerts/{id}/ack'],
  ['POST', '/admin/keys'], ['GET', '/admin/keys'], ['DELETE', '/admin/keys/{id}'], ['POST', '/ws-token'],
  ['GET', '/rules'], ['PUT', '/rules'], ['DELETE', '/rules'],
];

const texts = [...HOSTILE_JSON_TEXTS, ...generatedTexts(300)];
const statuses = new Map<number, number>();
/** An admin key, so hostile requests reach every handler rather than stopping at 401. */
let adminKey = '';
const fiveHundreds: string[] = [];

async function fuzzHttp(port: number): Promise<void> {
  const record = (what: string, status: number) => {
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (status >= 500 && status !== 503) fiveHundreds.push(`${status} ${what}`);
  };
  const json: [string, string] = ['content-type', 'application/json'];
  const key: [string, string] = ['x-api-key', adminKey];
  for (const [method, template] of ROUTES) {
    const segments = template.includes('{id}') ? HOSTILE_PATH_SEGMENTS : [''];
    for (const segment of segments) {
      const path = template.replace('{id}', segment);
      record(`${method} ${path.slice(0, 80)}`, await rawHttp(port, method, path, [json, key], method === 'GET' || method === 'DELETE' ? '' : '{}'));
    }
    const base = template.replace('{id}', victim);
    for (const query of HOSTILE_QUERIES) record(`${method} ${base}?${query.slice(0, 60)}`, await rawHttp(port, method, `${base}?${query}`, [json, key]));
    for (const header of HOSTILE_HEADERS) {
      const credentials = header[0] === 'x-api-key' || header[0] === 'authorization' ? [] : [key];
      record(`${method} ${base} [${header[0]}]`, await rawHttp(port, method, base, [json, ...credentials, header], '{}'));
    }
    if (method !== 'GET' && method !== 'DELETE') {
      for (const body of texts.slice(0, 60)) record(`${method} ${base} body ${body.slice(0, 40)}`, await rawHttp(port, method, base, [json, key], body));
    }
  }
  // Wrong methods, unknown paths, a path that is nothing but escapes, an absolute-form target.
  for (const [method, target] of [['PATCH', '/status/x'], ['BREW', '/'], ['GET', '/%'], ['GET', '/' + '%41'.repeat(3000)], ['GET', 'http://evil.example/status/x'], ['GET', '*']]) {
    record(`${method} ${target!.slice(0, 60)}`, await rawHttp(port, method!, target!, []));
  }
}

async function fuzzWebSocket(port: number): Promise<void> {
  const open = () =>
    new Promise<WebSocket>((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { 'x-api-key': adminKey } });
      socket.on('error', () => undefined);
      socket.once('open', () => resolve(socket));
      socket.once('close', () => resolve(socket));
    });
  let socket = await open();
  const frames: (string | Buffer)[] = [...texts, ...HOSTILE_BYTES, 'x'.repeat(3 * 1024 * 1024)];
  for (const type of ['subscribe_device', 'unsubscribe_device', 'subscribe_devices', 'unsubscribe_devices', 'subscribe_all', 'unsubscribe_all', 'ack_alert', 'auth', 'ping']) {
    for (const value of ['\u0000', '\ud800', 'a'.repeat(300), 1e309, -0, null, [], {}, { __proto__: 1 }]) {
      frames.push(JSON.stringify({ type, id: value, device_id: value, alert_id: value, token: value, since_seq: value, since_fleet_seq: value, epoch: value }));
      frames.push(JSON.stringify({ type, device_ids: [value, 'ok-id'], resume: { 'ok-id': { since_seq: value, epoch: value }, [String(value)]: value } }));
    }
  }
  for (const frame of frames) {
    if (socket.readyState !== WebSocket.OPEN) socket = await open();
    if (socket.readyState === WebSocket.OPEN) socket.send(frame, { binary: Buffer.isBuffer(frame) });
    await new Promise((r) => setImmediate(r));
  }
  // A follower of the victim device, so frames injected on its fan-out channel have somewhere to go.
  if (socket.readyState !== WebSocket.OPEN) socket = await open();
  socket.send(JSON.stringify({ type: 'subscribe_device', device_id: victim }));
  await new Promise((r) => setTimeout(r, 200));
  socket.close();
}

async function fuzzMqtt(): Promise<void> {
  const client = await connectAsync(SERVICES.mqttUrl, { clientId: `hostile-${run}`, clean: true, reconnectPeriod: 0 });
  const ids = [victim, 'a'.repeat(300), '__proto__', 'é', '..', ' ', 'x%00', '\ud83d\udca9'];
  for (const id of ids) {
    for (const kind of ['telemetry', 'heartbeat', 'status', 'commands/ack', 'unknown']) {
      for (const payload of [...texts.slice(0, 80), ...HOSTILE_BYTES]) await client.publishAsync(`${prefix}/${id}/${kind}`, payload, { qos: 1 });
    }
  }
  await client.publishAsync(`${prefix}/${victim}/telemetry`, Buffer.alloc(15 * 1024, 0x7b), { qos: 1 });
  await client.endAsync();
}

async function fuzzClusterBus(): Promise<void> {
  await redis.connect();
  for (const name of ['a', 'b']) {
    const instance = `${name}-${run}`;
    const forwards = [
      ...HOSTILE_BYTES,
      Buffer.from('no newline at all'),
      Buffer.from('\n'),
      ...texts.slice(0, 60).map((t) => Buffer.from(`${prefix}/${victim}/telemetry\n${t}`)),
      Buffer.from(`${prefix}/%E0%A4%A/telemetry\n{}`),
      Buffer.from(`${prefix}/${victim}\n{}`),
    ];
    for (const message of forwards) await redis.publish(`${keyPrefix}cluster:fwd:${instance}`, message);
    const requests = [
      ...texts.slice(0, 60),
      JSON.stringify({ id: 1, from: 'nobody', op: 'no-such-op', device_id: victim, body: null }),
      JSON.stringify({ id: 2, from: `b-${run}`, op: 'snapshot', device_id: '\u0000', body: { x: '\ud800' } }),
      JSON.stringify({ id: 1e309, from: {}, op: [], device_id: 1 }),
      JSON.stringify({ reply: 3, frame: '\u0000' }),
    ];
    for (const message of requests) await redis.publish(`${keyPrefix}cluster:rpc:${instance}`, message);
  }
  for (const message of [...texts.slice(0, 60), ...HOSTILE_BYTES]) {
    await redis.publish(`${keyPrefix}ch:${victim}`, message);
    await redis.publish(`${keyPrefix}ch:*`, message);
  }
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { 'x-api-key': adminKey } })).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && !line.startsWith('#')) sum += Number(line.split(' ').at(-1));
  return sum;
}

it('hostile input on every entry stops nothing: both instances live, no 500, the control device loses nothing', async () => {
  for (const name of ['a', 'b']) hubs.push(await spawnHub(env(name)));
  await until('two members', async () => (await Promise.all(hubs.map((h) => metric(h.port, 'vigil_cluster_members')))).every((n) => n === 2));
  const created = await fetch(`http://127.0.0.1:${hubs[0]!.port}/admin/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'hostile-suite', scopes: ['admin'] }),
  });
  expect(created.status).toBe(201);
  adminKey = ((await created.json()) as { key: string }).key;
  // The other instance reads the key table every KEY_RELOAD_MS.
  await until('the key known on both instances', async () =>
    (await Promise.all(hubs.map((h) => fetch(`http://127.0.0.1:${h.port}/metrics`, { headers: { 'x-api-key': adminKey } })))).every((r) => r.status === 200),
  );
  const followers = await Promise.all(hubs.map((h) => TestClient.connect(`ws://127.0.0.1:${h.port}/ws?token=${adminKey}`)));
  for (const follower of followers) expect((await follower.request({ type: 'subscribe_device', device_id: control }, 1)).type).toBe('ack');

  const total = 600;
  const publisher = await steadyPublisher({ prefix, devices: [control], total, ratePerS: 40 });
  await Promise.all([
    ...hubs.map((h) => fuzzHttp(h.port)),
    ...hubs.map((h) => fuzzWebSocket(h.port)),
    fuzzMqtt(),
    fuzzClusterBus(),
  ]);
  await publisher.done;

  for (const hub of hubs) expect(hub.child.exitCode, hub.logs.slice(-20).join('\n')).toBeNull();
  expect(fiveHundreds, fiveHundreds.slice(0, 20).join('\n')).toEqual([]);
  for (const hub of hubs) expect((await fetch(`http://127.0.0.1:${hub.port}/healthz`)).status).toBe(200);

  await until('every control message stored', async () => {
    const [r] = await sql<{ n: number }[]>`select count(*)::int as n from telemetry where device_id = ${control}`;
    return r!.n >= total;
  });
  const [stored] = await sql<{ n: number; distinct: number }[]>`
    select count(*)::int as n, count(distinct ts)::int as distinct from telemetry where device_id = ${control}`;
  expect(stored).toEqual({ n: total, distinct: total });
  for (const follower of followers) {
    await until('every control update pushed', async () => new Set(follower.ofType('device_update', control).map((f) => f.timestamp)).size >= total);
    follower.close();
  }
  expect((await Promise.all(hubs.map((h) => metric(h.port, 'vigil_invalid_messages_total')))).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  const summary = [...statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ');
  process.stdout.write(`hostile input: HTTP answers ${summary}; ${total} control messages stored once and pushed to both instances\n`);
}, 300_000);
