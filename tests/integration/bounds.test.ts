import { randomBytes } from 'node:crypto';
import { connect as connectTcp } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';

async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One sample of /metrics (0 when absent), e.g. `vigil_devices_refused_total{reason="device_limit"}`. */
async function metric(port: number, sample: string, key = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: key ? { 'x-api-key': key } : {} })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

/** The HTTP answer to a WebSocket upgrade: 101 when it opened (the socket is returned), else status and body. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; socket: WebSocket | null }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => resolve({ status: 101, body: '', socket }));
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socket: null }));
    });
    socket.once('error', (error) => reject(error));
  });
}

// Hubs here that count devices get a database of their own: a shared one holds other tests' devices.
const databases = freshDatabases();
afterAll(() => databases.dropAll());

const randomIds = (n: number, tag: string) => Array.from({ length: n }, () => `${tag}-${randomBytes(6).toString('hex')}`);

describe('bounds on devices (real Mosquitto, Redis, PostgreSQL)', () => {
  let hub: RunningHub;
  const prefix = () => hub.config.MQTT_TOPIC_PREFIX;

  beforeAll(async () => {
    hub = await startTestHub('services', { DATABASE_URL: await databases.create(), MAX_DEVICES: '60', MAX_NEW_DEVICES_PER_S: '1000', MAX_NEW_DEVICES_BURST: '1000', HTTP_RATE_PER_S: '10000', HTTP_RATE_BURST: '10000' });
  });
  afterAll(() => hub?.stop());

  it('refuses and counts new devices past MAX_DEVICES, acknowledges their messages, and keeps serving known ones', async () => {
    const device = await deviceClient(hub, prefix());
    const watcher = await TestClient.connect(wsUrl(hub));
    try {
      await device.telemetry('control', { battery_level: 50 });
      await waitUntil(() => hub.hub.registry.get('control') !== undefined);
      watcher.send({ type: 'subscribe_device', device_id: 'control' });
      await watcher.next((f) => f.type === 'snapshot');

      // 300 random ids at QoS 1: every publish is acknowledged (awaited), 59 more are registered.
      const ids = randomIds(300, 'flood');
      await Promise.all(ids.map((id) => device.telemetry(id, { battery_level: 10 })));
      await waitUntil(async () => (await metric(hub.port, 'vigil_devices_refused_total{reason="device_limit"}')) === 241);
      expect(hub.hub.registry.size).toBe(60);
      expect(await metric(hub.port, 'vigil_devices_known')).toBe(60);
      expect(await metric(hub.port, 'vigil_devices_max')).toBe(60);
      expect(await metric(hub.port, 'vigil_mqtt_messages_total{kind="telemetry",outcome="refused"}')).toBe(241);
      const refused = ids.filter((id) => hub.hub.registry.get(id) === undefined);
      expect(refused).toHaveLength(241);
      expect((await fetch(httpUrl(hub, `/status/${refused[0]}`))).status).toBe(404);
      // Heartbeats and status messages of unknown devices are refused the same way.
      await device.raw(`${refused[1]}/heartbeat`, '1');
      await device.raw(`${refused[2]}/status`, 'online');
      await waitUntil(async () => (await metric(hub.port, 'vigil_devices_refused_total{reason="device_limit"}')) === 243);

      // The known device is still served live.
      await device.telemetry('control', { battery_level: 77 });
      const update = await watcher.next((f) => f.type === 'device_update' && (f.data as { battery_level?: number }).battery_level === 77);
      expect(update.device_id).toBe('control');

      // HTTP ingest and device settings of a new id: 503 device_limit; a known id is fine.
      const post = await fetch(httpUrl(hub, '/status'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: 'http-new', battery_level: 5 }) });
      expect(post.status).toBe(503);
      expect(((await post.json()) as { error: { code: string } }).error.code).toBe('device_limit');
      const put = await fetch(httpUrl(hub, '/devices/settings-new'), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x' }) });
      expect(put.status).toBe(503);
      expect((await fetch(httpUrl(hub, '/status'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: 'control', battery_level: 6 }) })).status).toBe(200);
      expect(hub.hub.registry.size).toBe(60);
    } finally {
      watcher.close();
      await device.client.endAsync();
    }
  });
});

describe('new devices per second', () => {
  let hub: RunningHub;
  beforeAll(async () => {
    hub = await startTestHub('services', { DATABASE_URL: await databases.create(), MAX_NEW_DEVICES_PER_S: '5', MAX_NEW_DEVICES_BURST: '20' });
  });
  afterAll(() => hub?.stop());

  it('admits a burst, then MAX_NEW_DEVICES_PER_S; the others are refused as new_device_rate and later admitted', async () => {
    const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
    try {
      const started = Date.now();
      const ids = randomIds(200, 'rate');
      await Promise.all(ids.map((id) => device.telemetry(id, { battery_level: 10 })));
      const seconds = (Date.now() - started) / 1000;
      await waitUntil(async () => hub.hub.registry.size + (await metric(hub.port, 'vigil_devices_refused_total{reason="new_device_rate"}')) === 200);
      expect(hub.hub.registry.size).toBeGreaterThanOrEqual(20);
      expect(hub.hub.registry.size).toBeLessThanOrEqual(20 + Math.ceil(5 * (seconds + 1)));
      // A refused device that speaks again once tokens are back is registered.
      const late = ids.find((id) => hub.hub.registry.get(id) === undefined)!;
      await waitUntil(async () => {
        await device.telemetry(late, { battery_level: 11 });
        return hub.hub.registry.get(late) !== undefined;
      });
    } finally {
      await device.client.endAsync();
    }
  });
});

describe('GET /status/summary paged', () => {
  let hub: RunningHub;
  beforeAll(async () => {
    hub = await startTestHub('embedded', { HTTP_MAX_PAGE_ITEMS: '600' });
  });
  afterAll(() => hub?.stop());

  it('walks every device exactly once by cursor, with totals for the whole fleet', async () => {
    const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
    const ids = randomIds(1234, 'page');
    await Promise.all(ids.map((id) => device.telemetry(id, { battery_level: 40 })));
    await device.raw(`${ids[0]}/status`, 'offline');
    await device.client.endAsync();
    await waitUntil(() => hub.hub.registry.size === 1234 && hub.hub.registry.get(ids[0]!)?.status === 'offline');

    type Summary = { devices: { device_id: string }[]; total_devices: number; online_devices: number; offline_devices: number; unknown_devices: number; next_cursor: string | null };
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await fetch(httpUrl(hub, `/status/summary?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`));
      expect(r.status).toBe(200);
      const page = (await r.json()) as Summary;
      expect(page.devices.length).toBeLessThanOrEqual(100);
      expect(page).toMatchObject({ total_devices: 1234, online_devices: 1233, offline_devices: 1, unknown_devices: 0 });
      seen.push(...page.devices.map((d) => d.device_id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== null && pages < 100);
    expect(pages).toBe(13);
    expect(seen).toHaveLength(1234);
    expect(new Set(seen).size).toBe(1234);
    expect([...seen].sort()).toEqual(seen); // sorted by id: the same order on every instance
    expect(new Set(seen)).toEqual(new Set(ids));

    // Default page size 500; over HTTP_MAX_PAGE_ITEMS and foreign cursors are refused with a code.
    expect(((await (await fetch(httpUrl(hub, '/status/summary'))).json()) as Summary).devices).toHaveLength(500);
    const big = await fetch(httpUrl(hub, '/status/summary?limit=601'));
    expect(big.status).toBe(422);
    expect(JSON.stringify(await big.json())).toContain('too_big');
    const bad = await fetch(httpUrl(hub, '/status/summary?cursor=%2F%2F%2F'));
    expect(bad.status).toBe(422);
    expect(JSON.stringify(await bad.json())).toContain('invalid_cursor');
    expect(await metric(hub.port, 'vigil_http_refused_total{code="invalid_cursor"}')).toBe(1);
  });

  it('bounds the time range of metrics and uptime queries', async () => {
    await fetch(httpUrl(hub, '/status'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: 'ranged', battery_level: 5 }) });
    const from = new Date(Date.now() - 40 * 86_400_000).toISOString();
    const metrics = await fetch(httpUrl(hub, `/devices/ranged/metrics?bucket=1h&from=${from}`));
    expect(metrics.status).toBe(422);
    expect(JSON.stringify(await metrics.json())).toContain('range_too_large');
    const uptime = await fetch(httpUrl(hub, `/devices/ranged/uptime?window_s=${40 * 86_400}`));
    expect(uptime.status).toBe(422);
    expect((await fetch(httpUrl(hub, `/devices/ranged/metrics?bucket=1h&from=${new Date(Date.now() - 30 * 86_400_000).toISOString()}`))).status).toBe(200);
    expect((await fetch(httpUrl(hub, '/devices/ranged/uptime?window_s=86400'))).status).toBe(200);
  });

  it('answers 431 to request headers over HTTP_MAX_HEADER_BYTES, on REST and the WebSocket upgrade', async () => {
    const big = { 'x-big': 'z'.repeat(20_000) };
    const r = await fetch(httpUrl(hub, '/status/summary'), { headers: big });
    expect(r.status).toBe(431);
    expect(JSON.stringify(await r.json())).toContain('headers_too_large');
    expect((await upgrade(wsUrl(hub), big)).status).toBe(431);
    expect((await fetch(httpUrl(hub, '/healthz'), { headers: { 'x-fine': 'z'.repeat(8000) } })).status).toBe(200);
  });
});

describe('WebSocket connections per address and unauthenticated sockets', () => {
  let hub: RunningHub;
  let adminKey = '';
  const open: WebSocket[] = [];

  beforeAll(async () => {
    // Its own database: the key made here switches authentication on.
    hub = await startTestHub('services', { DATABASE_URL: await databases.create(), WS_MAX_CONNECTIONS_PER_IP: '6', WS_MAX_UNAUTHENTICATED: '3', WS_AUTH_TIMEOUT_S: '30' });
    const created = await fetch(httpUrl(hub, '/admin/keys'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ops', scopes: ['admin'] }) });
    adminKey = ((await created.json()) as { key: string }).key;
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await hub?.stop();
  });

  it('refuses sockets waiting to authenticate past WS_MAX_UNAUTHENTICATED (503), not those with a key', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await upgrade(wsUrl(hub));
      expect(r.status).toBe(101);
      open.push(r.socket!);
    }
    const refused = await upgrade(wsUrl(hub));
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).error.code).toBe('too_many_unauthenticated');
    const keyed = await upgrade(wsUrl(hub), { 'x-api-key': adminKey });
    expect(keyed.status).toBe(101);
    open.push(keyed.socket!);
    // One of the three authenticates: its place is free again.
    const client = open[0]!;
    client.send(JSON.stringify({ type: 'auth', token: adminKey, id: 1 }));
    await new Promise((r) => client.once('message', r));
    await waitUntil(async () => (await metric(hub.port, 'vigil_ws_unauthenticated', adminKey)) === 2);
    const again = await upgrade(wsUrl(hub));
    expect(again.status).toBe(101);
    open.push(again.socket!);
    expect(await metric(hub.port, 'vigil_ws_connections_total{outcome="refused_unauthenticated_limit"}', adminKey)).toBe(1);
  });

  it('refuses connections from one address past WS_MAX_CONNECTIONS_PER_IP (429), and frees them on close', async () => {
    while (open.length < 6) {
      const r = await upgrade(wsUrl(hub), { 'x-api-key': adminKey });
      expect(r.status).toBe(101);
      open.push(r.socket!);
    }
    const refused = await upgrade(wsUrl(hub), { 'x-api-key': adminKey });
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error.code).toBe('too_many_connections_from_address');
    expect(await metric(hub.port, 'vigil_ws_connections_total{outcome="refused_address_limit"}', adminKey)).toBe(1);
    const closing = open.pop()!;
    closing.close();
    await new Promise((r) => closing.once('close', r));
    await waitUntil(async () => {
      const r = await upgrade(wsUrl(hub), { 'x-api-key': adminKey });
      if (r.socket !== null) open.push(r.socket);
      return r.status === 101;
    });
  });

  it('lets exempt addresses past the per-address limit', async () => {
    const exempt = await startTestHub('embedded', { WS_MAX_CONNECTIONS_PER_IP: '2', WS_CONNECTION_LIMIT_EXEMPT: '127.0.0.1' });
    const sockets: WebSocket[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const r = await upgrade(wsUrl(exempt));
        expect(r.status).toBe(101);
        sockets.push(r.socket!);
      }
    } finally {
      for (const s of sockets) s.close();
      await exempt.stop();
    }
  });
});

describe('embedded broker packet size', () => {
  let hub: HubProcess;
  beforeAll(async () => {
    hub = await spawnHub({ HOST: '127.0.0.1', PORT: '0', MQTT_PORT: '0', DATA_DIR: mkdtempSync(join(tmpdir(), 'vigil-bounds-')), MQTT_CLIENT_ID: `vigil-test-${randomSuffix()}` }, 90_000);
  });
  afterAll(() => hub?.stop());

  it('closes a client announcing a 100 MiB publish before buffering it; the hub keeps serving', async () => {
    const mqttPort = Number(/embedded aedes on mqtt:\/\/[^:]+:(\d+)/.exec(hub.logs.join('\n'))![1]);
    const rssBefore = await metric(hub.port, 'process_resident_memory_bytes');
    const sent = await new Promise<number>((resolve) => {
      const socket = connectTcp(mqttPort, '127.0.0.1');
      let written = 0;
      const total = 100 * 1024 * 1024;
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      socket.on('connect', () => {
        // CONNECT (MQTT 3.1.1, clean session, client id "big"), then a PUBLISH announcing 100 MiB.
        socket.write(Buffer.from([0x10, 15, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 30, 0, 3, 0x62, 0x69, 0x67]));
        const length = total + 2 + 5;
        const varint: number[] = [];
        let x = length;
        do {
          let byte = x % 128;
          x = Math.floor(x / 128);
          if (x > 0) byte |= 128;
          varint.push(byte);
        } while (x > 0);
        socket.write(Buffer.from([0x30, ...varint, 0, 5, 0x61, 0x2f, 0x62, 0x2f, 0x63]));
        const pump = () => {
          while (written < total && !socket.destroyed) {
            written += chunk.length;
            if (!socket.write(chunk)) return void socket.once('drain', pump);
          }
        };
        pump();
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(written));
    });
    expect(sent).toBeLessThan(100 * 1024 * 1024);
    expect(await metric(hub.port, 'vigil_broker_oversize_packets_total')).toBe(1);
    const rssAfter = await metric(hub.port, 'process_resident_memory_bytes');
    expect(rssAfter - rssBefore).toBeLessThan(32 * 1024 * 1024);
    expect((await fetch(`http://127.0.0.1:${hub.port}/healthz`)).status).toBe(200);
    // A device with a normal message is still served.
    const { connectAsync } = await import('mqtt');
    const device = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `dev-${randomSuffix()}`, reconnectPeriod: 0 });
    await device.publishAsync('devices/after-big/telemetry', JSON.stringify({ battery_level: 42 }), { qos: 1 });
    await device.endAsync();
    await waitUntil(async () => (await fetch(`http://127.0.0.1:${hub.port}/status/after-big`)).status === 200);
  });
});
