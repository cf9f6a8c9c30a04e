import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { createVigilClient, type VigilFrame, type WebSocketConstructor } from '../../public/vigil-client.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { deviceClient, httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';
import { letTimePass } from '../helpers/wait.js';

/**
 * The live fleet table against a real hub (PostgreSQL, Redis, Mosquitto) and real MQTT and
 * WebSocket clients: the chunked full snapshot, per-interval deltas that follow every reading,
 * removed devices, the refusal for device-limited keys, and the browser client's resume.
 */
const INTERVAL_MS = 200;
const CHUNK = 10;
const DEVICES = 25;

interface Row {
  id: string;
  status: string;
  battery_level: number | null;
  rssi: number | null;
  last_seen: string | null;
  active_alerts: number;
  flapping: boolean;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const summaries = (client: TestClient, from = 0): Frame[] => client.frames.slice(from).filter((f) => f.type === 'fleet_summary');
const rowsOf = (frame: Frame): Row[] => frame.devices as Row[];

describe('fleet summaries', () => {
  const databases = freshDatabases();
  let hub: RunningHub;
  let admin: string;
  let limited: string;
  let device: Awaited<ReturnType<typeof deviceClient>>;
  const ids = Array.from({ length: DEVICES }, (_, i) => `fs-${randomSuffix()}-${i}`);

  const call = (path: string, init: { method?: string; key?: string; body?: unknown } = {}) =>
    fetch(httpUrl(hub, path), {
      method: init.method ?? 'GET',
      headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.key ? { 'x-api-key': init.key } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });

  const authed = async (key: string): Promise<TestClient> => {
    const client = await TestClient.connect(wsUrl(hub));
    expect((await client.request({ type: 'auth', token: key }, 1)).type).toBe('ack');
    return client;
  };

  beforeAll(async () => {
    hub = await startTestHub('services', {
      DATABASE_URL: await databases.create(),
      FLEET_SUMMARY_INTERVAL_MS: String(INTERVAL_MS),
      FLEET_SUMMARY_CHUNK: String(CHUNK),
      HTTP_RATE_PER_S: '100000',
      HTTP_RATE_BURST: '100000',
    });
    admin = ((await (await call('/admin/keys', { method: 'POST', body: { name: 'root', scopes: ['admin'] } })).json()) as { key: string }).key;
    const made = await call('/admin/keys', { method: 'POST', key: admin, body: { name: 'one-device', scopes: ['read'], device_ids: [ids[0]] } });
    limited = ((await made.json()) as { key: string }).key;
    device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
    for (const [i, id] of ids.entries()) await device.telemetry(id, { battery_level: 50 + i, rssi: -60 - i });
    await until('every device registered', () => (ids.every((id) => hub.hub.registry.get(id)?.telemetry !== null && hub.hub.registry.get(id) !== undefined) ? true : undefined));
  }, 60_000);

  afterAll(async () => {
    await device?.client.endAsync();
    await hub?.stop();
    await databases.dropAll();
  });

  it('sends the whole fleet in chunks after the ack, then deltas that follow each reading within the interval', async () => {
    const client = await authed(admin);
    const ack = await client.request({ type: 'subscribe_all', summaries: true }, 2);
    expect(ack.type).toBe('ack');
    const ackAt = client.frames.indexOf(ack);
    const full = await until('the full snapshot', () => {
      const frames = summaries(client, ackAt);
      return frames.some((f) => f.last === true) ? frames : undefined;
    });
    // Only the full snapshot so far: chunks of at most CHUNK devices, the last one marked.
    const chunks = full.slice(0, full.findIndex((f) => f.last === true) + 1);
    expect(chunks.every((f) => f.full === true)).toBe(true);
    expect(chunks.length).toBe(Math.ceil(DEVICES / CHUNK));
    expect(chunks.every((f) => rowsOf(f).length <= CHUNK)).toBe(true);
    const rows = new Map(chunks.flatMap(rowsOf).map((r) => [r.id, r]));
    for (const [i, id] of ids.entries()) {
      expect(rows.get(id)).toMatchObject({ id, status: 'online', battery_level: 50 + i, rssi: -60 - i, active_alerts: 0, flapping: false });
    }
    expect(Object.keys(rowsOf(chunks[0]!)[0]!)).toEqual(['id', 'type', 'name', 'status', 'last_seen', 'battery_level', 'rssi', 'score', 'active_alerts', 'flapping']);

    // Every reading shows in a delta within about one interval, as the device's battery and last_seen.
    const target = ids[3]!;
    let lastSeen = rows.get(target)!.last_seen!;
    for (const battery of [11, 12, 13]) {
      const from = client.frames.length;
      const sentAt = Date.now();
      await device.telemetry(target, { battery_level: battery, rssi: -40 });
      const row = await until(`battery ${battery} in a delta`, () =>
        summaries(client, from).flatMap(rowsOf).find((r) => r.id === target && r.battery_level === battery),
      );
      expect(Date.now() - sentAt).toBeLessThan(INTERVAL_MS * 10); // generous: the machine is shared
      expect(Date.parse(row.last_seen!)).toBeGreaterThan(Date.parse(lastSeen));
      lastSeen = row.last_seen!;
    }

    // A burst from one device: at most one row of it per frame, the newest value last.
    const from = client.frames.length;
    for (let battery = 1; battery <= 20; battery++) await device.telemetry(ids[4]!, { battery_level: battery });
    await until('the burst settled', () => (summaries(client, from).flatMap(rowsOf).some((r) => r.id === ids[4] && r.battery_level === 20) ? true : undefined));
    const deltas = summaries(client, from);
    expect(deltas.every((f) => f.full === false)).toBe(true);
    for (const frame of deltas) expect(rowsOf(frame).filter((r) => r.id === ids[4]).length).toBeLessThanOrEqual(1);
    expect(deltas.length).toBeLessThan(20); // throttled: fewer frames than messages

    // A deleted device is named in `removed`.
    const beforeDelete = client.frames.length;
    expect((await call(`/devices/${ids[5]}`, { method: 'DELETE', key: admin })).status).toBe(200);
    await until('the removal', () => (summaries(client, beforeDelete).some((f) => (f.removed as string[]).includes(ids[5]!)) ? true : undefined));

    const metrics = await (await call('/metrics', { key: admin })).text();
    expect(metrics).toMatch(/vigil_fleet_summary_frames_total\{kind="full"\} [1-9]/);
    expect(metrics).toMatch(/vigil_fleet_summary_frames_total\{kind="delta"\} [1-9]/);
    expect(metrics).toMatch(/vigil_fleet_summary_bytes_total\{kind="delta"\} [1-9]/);
    expect(metrics).toMatch(/vigil_fleet_summary_subscribers 1/);
    client.close();
    await until('the subscriber released', async () => ((await (await call('/metrics', { key: admin })).text()).includes('vigil_fleet_summary_subscribers 0') ? true : undefined));
    expect(await (await call('/metrics', { key: admin })).text()).not.toMatch(/vigil_internal_errors_total\{[^}]*\} [1-9]/);
  }, 60_000);

  it('refuses summaries (and the * feed) to a device-limited key', async () => {
    const client = await authed(limited);
    const answer = await client.request({ type: 'subscribe_all', summaries: true }, 2);
    expect(answer).toMatchObject({ type: 'error', error: { code: 'forbidden' } });
    await device.telemetry(ids[0]!, { battery_level: 5 });
    // The device's own channel still works for it; no summary frame ever arrives.
    expect((await client.request({ type: 'subscribe_device', device_id: ids[0] }, 3)).type).toBe('ack');
    await letTimePass(INTERVAL_MS * 3, 'three summary intervals pass without a summary frame');
    expect(summaries(client)).toEqual([]);
    client.close();
  }, 30_000);

  it('rejects a summaries option that is not a boolean', async () => {
    const client = await authed(admin);
    expect(await client.request({ type: 'subscribe_all', summaries: 'yes' }, 2)).toMatchObject({ type: 'error', error: { code: 'invalid_message' } });
    client.close();
  });

  it('the browser client resumes a device after a forced reconnect, without duplicates, and gets a full summary again', async () => {
    const sockets: WebSocket[] = [];
    const sent: string[] = [];
    class Recording extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
      override send(data: string): void {
        sent.push(data);
        super.send(data);
      }
    }
    const vigil = createVigilClient({ url: wsUrl(hub), token: async () => admin, WebSocket: Recording as unknown as WebSocketConstructor, reconnect: { minMs: 50, maxMs: 200 } });
    const statuses: string[] = [];
    vigil.onStatus((s) => statuses.push(s));
    const target = ids[6]!;
    const frames: VigilFrame[] = [];
    vigil.subscribeDevice(target, (f) => frames.push(f));
    const fleet: VigilFrame[] = [];
    vigil.subscribeFleet({ summaries: true }, (f) => fleet.push(f));
    await until('the snapshot', () => frames.find((f) => f.type === 'snapshot'));
    await until('a full summary', () => fleet.find((f) => f.type === 'fleet_summary' && f.full === true && f.last === true));
    await device.telemetry(target, { battery_level: 70 });
    await until('the first update', () => frames.find((f) => f.type === 'device_update'));

    const fullsBefore = fleet.filter((f) => f.type === 'fleet_summary' && f.full === true).length;
    sockets[0]!.terminate(); // the network drops
    await until('reconnecting', () => (statuses.includes('reconnecting') ? true : undefined));
    await device.telemetry(target, { battery_level: 71 }); // missed while away (or just after): resumed
    await until('open again', () => (sockets.length === 2 && vigil.status === 'open' ? true : undefined));
    await device.telemetry(target, { battery_level: 72 });
    await until('the update after the reconnect', () => frames.find((f) => f.type === 'device_update' && (f.data as { battery_level: number }).battery_level === 72));

    const resume = sent.map((s) => JSON.parse(s) as Record<string, unknown>).filter((m) => m.type === 'subscribe_device');
    expect(resume).toHaveLength(2);
    expect(resume[1]).toMatchObject({ device_id: target, epoch: frames[0]!.epoch });
    expect(typeof resume[1]!.since_seq).toBe('number');
    const updates = frames.filter((f) => f.type === 'device_update').map((f) => (f.data as { battery_level: number }).battery_level);
    expect(updates).toEqual([70, 71, 72]); // each once, in order: resumed, not duplicated
    const seqs = frames.filter((f) => f.type !== 'snapshot').map((f) => f.seq as number);
    expect(new Set(seqs).size).toBe(seqs.length);
    await until('a full summary after the reconnect', () => (fleet.filter((f) => f.type === 'fleet_summary' && f.full === true).length > fullsBefore ? true : undefined));
    vigil.close();
    expect(vigil.status).toBe('closed');
  }, 60_000);

  it('the browser client follows 300 devices across a reconnect without tripping the rate limit (subscribe_devices, resumed)', async () => {
    // 300 single subscribes in one burst would pass twice WS_MAX_MESSAGES_PER_S (100) and be closed with 4029, on every attempt.
    const sockets: WebSocket[] = [];
    const sent: Record<string, unknown>[] = [];
    class Recording extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
      override send(data: string): void {
        sent.push(JSON.parse(data) as Record<string, unknown>);
        super.send(data);
      }
    }
    const vigil = createVigilClient({ url: wsUrl(hub), token: async () => admin, WebSocket: Recording as unknown as WebSocketConstructor, reconnect: { minMs: 50, maxMs: 200 } });
    const statuses: string[] = [];
    vigil.onStatus((s) => statuses.push(s));
    const errors: string[] = [];
    vigil.onError((e) => errors.push(`${e.code}: ${e.message}`));
    const many = Array.from({ length: 300 }, (_, i) => `many-${i}`);
    const snapshots = new Set<string>();
    const updates: number[] = [];
    for (const id of many) {
      vigil.subscribeDevice(id, (f) => {
        if (f.type === 'snapshot') snapshots.add(id);
        if (f.type === 'device_update' && id === 'many-299') updates.push((f.data as { battery_level: number }).battery_level);
      });
    }
    await until('300 snapshots', () => (snapshots.size === 300 ? true : undefined));
    await device.telemetry('many-299', { battery_level: 40 });
    await until('the first update', () => (updates.length === 1 ? true : undefined));
    sockets[0]!.terminate();
    await until('open again', () => (sockets.length === 2 && vigil.status === 'open' ? true : undefined));
    await device.telemetry('many-299', { battery_level: 41 });
    await until('the update after the reconnect', () => (updates.includes(41) ? true : undefined)).catch((e: unknown) => {
      throw new Error(`${String(e)}; errors: ${errors.join('; ')}; sent: ${JSON.stringify(sent.map((m) => m.type))}`);
    });
    const batches = sent.filter((m) => m.type === 'subscribe_devices');
    const second = batches.filter((m) => m.resume !== undefined);
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(second.flatMap((m) => Object.keys(m.resume as object))).toHaveLength(300);
    expect(sent.filter((m) => m.type === 'subscribe_device')).toEqual([]);
    expect(errors).toEqual([]);
    expect(updates).toEqual([40, 41]);
    expect(statuses).not.toContain('closed');
    expect(sockets).toHaveLength(2); // no 4029 and retry
    vigil.close();
  }, 60_000);

  it('serves the client as a JavaScript module under the page policy', async () => {
    const response = await call('/vigil-client.js');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await response.text()).toContain('export function createVigilClient');
  });
});
