import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, wsUrl } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';
import { eventually, letTimePass } from '../helpers/wait.js';

/** Settings the suite's hub runs with; the tests below rely on these limits. */
export const CONTRACT_HUB_SETTINGS = {
  OFFLINE_TIMEOUT_S: '1',
  PRESENCE_SWEEP_MS: '100',
  WS_MAX_SUBSCRIPTIONS: '5',
  WS_MAX_MESSAGES_PER_S: '40',
  WS_MAX_FRAME_BYTES: '1024',
  WS_LAG_BYTES: '65536',
  WS_LAG_CHECK_MS: '20',
  WS_SLOW_CLIENT_DEADLINE_S: '3',
  ALERT_RULES: JSON.stringify([{ type: 'probe_high', metric: 'metrics.probe', op: '>', raise: 100 }]),
};

type Device = Awaited<ReturnType<typeof deviceClient>>;

/**
 * Publishes `count` messages with at most `window` unacknowledged: a broker with stock settings
 * (Mosquitto: 20 in flight, 1000 queued per subscriber) drops what a burst beyond that overflows.
 */
async function publishMany(count: number, publish: (i: number) => Promise<void>, window = 50): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < count) await publish(next++);
    }),
  );
}

/** ~5 KB of readings per message, so a client that stops reading fills its buffers quickly. */
function bulkyMetrics(i: number): Record<string, number> {
  const metrics: Record<string, number> = { i };
  for (let k = 0; k < 63; k++) metrics[`reading_${k}_`.padEnd(60, 'x')] = i + k;
  return metrics;
}

/**
 * The hub end to end — real MQTT in, real WebSocket out — run once on the embedded defaults and
 * once on this machine's Mosquitto, Redis and PostgreSQL.
 */
export function runHubContract(name: string, start: () => Promise<RunningHub>): void {
  describe(`hub end to end (${name})`, () => {
    let hub: RunningHub;
    let device: Device;
    const clients: TestClient[] = [];
    const id = () => `dev-${randomSuffix()}`;
    const connect = async () => {
      const client = await TestClient.connect(wsUrl(hub));
      clients.push(client);
      return client;
    };
    /** The hub has handled the device's message: its status read shows the battery level it carried. */
    const handled = (deviceId: string, batteryLevel: number) =>
      eventually(`the hub handled ${deviceId}'s message`, async () => {
        const res = await fetch(httpUrl(hub, `/status/${deviceId}`));
        return res.status === 200 && ((await res.json()) as { battery_level?: number }).battery_level === batteryLevel;
      });
    /** Telemetry messages this hub accepted so far (counted once the hub step handled them). */
    const accepted = async () => (await hub.metrics.messagesIn.get()).values.find((v) => v.labels.kind === 'telemetry' && v.labels.outcome === 'accepted')?.value ?? 0;
    const subscribe = async (client: TestClient, deviceId: string) => {
      const before = client.frames.length;
      const ack = await client.request({ type: 'subscribe_device', device_id: deviceId }, before + 1000);
      expect(ack.type).toBe('ack');
      return client.next((f) => f.type === 'snapshot' && f.device_id === deviceId, 5000, before);
    };

    beforeAll(async () => {
      hub = await start();
      device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
    });
    afterAll(async () => {
      for (const c of clients) c.close();
      await device?.client.endAsync();
      await hub?.stop();
    });

    it('sends ack then a snapshot, then device_update frames with increasing seq', async () => {
      const d = id();
      const client = await connect();
      const snapshot = await subscribe(client, d);
      expect(snapshot).toMatchObject({ type: 'snapshot', device_id: d, seq: 0, data: { status: 'unknown', telemetry: null } });
      const ackIndex = client.frames.findIndex((f) => f.type === 'ack');
      expect(client.frames.indexOf(snapshot)).toBeGreaterThan(ackIndex);

      await device.telemetry(d, { battery_level: 87.5, rssi: -61, response_time_ms: 120, error_rate: 0.01, metrics: { temperature: 21.5 } });
      const online = await client.next((f) => f.type === 'status_change' && f.device_id === d);
      expect(online).toMatchObject({ status: 'online', previous: null, reason: 'telemetry' });
      const update = await client.next((f) => f.type === 'device_update' && f.device_id === d);
      // With Redis the online change is claimed across hubs first, so it may follow the first update;
      // a health_score frame also takes a number. Every frame of the device is numbered 1, 2, 3, …
      expect(online.seq).not.toBe(update.seq);
      await client.next((f) => f.type === 'health_score' && f.device_id === d);
      const numbered = client.frames.filter((f) => f.device_id === d && f.type !== 'snapshot').map((f) => f.seq as number);
      expect(numbered).toEqual(numbered.map((_, i) => i + 1));
      expect(update).toMatchObject({
        data: { battery_level: 87.5, rssi: -61, response_time_ms: 120, error_rate: 0.01, metrics: { temperature: 21.5 } },
      });
      expect(typeof update.timestamp).toBe('string');
    });

    it('keeps per-device order: seq rises by one per frame across 200 messages', async () => {
      const d = id();
      const client = await connect();
      await subscribe(client, d);
      for (let i = 0; i < 200; i++) await device.telemetry(d, { metrics: { i } });
      await client.next((f) => f.type === 'device_update' && (f.data as { metrics: { i: number } }).metrics.i === 199, 10_000);
      const frames = client.frames.filter((f) => f.device_id === d && typeof f.seq === 'number' && f.type !== 'snapshot');
      const seqs = frames.map((f) => f.seq as number);
      // (health_score frames are numbered too: at most one a second per device)
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
      const order = client.ofType('device_update', d).map((f) => (f.data as { metrics: { i: number } }).metrics.i);
      expect(order).toEqual([...Array(200).keys()]);
    });

    it('gives a late subscriber the latest state in its snapshot and continues at seq + 1', async () => {
      const d = id();
      const first = await connect();
      await subscribe(first, d);
      await device.telemetry(d, { battery_level: 50 });
      await device.telemetry(d, { battery_level: 49 });
      await first.next((f) => f.type === 'device_update' && (f.data as { battery_level: number }).battery_level === 49);
      const late = await connect();
      const snapshot = await subscribe(late, d);
      // Sent to `first` before the snapshot was sent to `late`, but on another socket: it may be read after.
      if ((snapshot.seq as number) > 0) await first.next((f) => f.device_id === d && f.seq === snapshot.seq && f.type !== 'snapshot');
      const lastSeq = Math.max(...first.frames.filter((f) => f.device_id === d && typeof f.seq === 'number').map((f) => f.seq as number));
      expect(snapshot).toMatchObject({ seq: lastSeq, data: { status: 'online', telemetry: { battery_level: 49 } } });
      expect(typeof (snapshot.data as { last_seen: unknown }).last_seen).toBe('string');
      await device.telemetry(d, { battery_level: 48 });
      const next = await late.next((f) => f.device_id === d && f.type !== 'snapshot');
      expect(next.seq).toBe(lastSeq + 1);
    });

    it('numbers events of a device nobody follows (their frames are not built) so a first subscriber continues at seq + 1', async () => {
      const d = id();
      const watcher = await connect();
      await device.telemetry(d, { battery_level: 70 });
      await device.telemetry(d, { battery_level: 69 });
      await device.telemetry(d, { battery_level: 68 });
      // Wait until the hub has taken the last reading: the snapshot then carries it.
      let snapshot: Frame;
      const deadline = Date.now() + 5000;
      do {
        const probe = await connect();
        snapshot = await subscribe(probe, d);
        probe.close();
      } while ((snapshot.data as { telemetry?: { battery_level?: number } | null }).telemetry?.battery_level !== 68 && Date.now() < deadline);
      // online transition + three readings (+ a health score): numbered though no frame was built.
      expect(snapshot.seq).toBeGreaterThanOrEqual(4);
      const fresh = await subscribe(watcher, d);
      await device.telemetry(d, { battery_level: 67 });
      // The first numbered frame after the snapshot (a health score may come before the reading).
      const next = await watcher.next((f) => f.device_id === d && typeof f.seq === 'number' && f.type !== 'snapshot');
      expect(next.seq).toBe((fresh.seq as number) + 1);
    });

    it('resumes after a reconnect with since_seq and epoch: the missed frames in order, no gap, no duplicate', async () => {
      const d = id();
      const first = await connect();
      const snapshot = await subscribe(first, d);
      for (let i = 0; i < 5; i++) await device.telemetry(d, { metrics: { i } });
      await first.next((f) => f.type === 'device_update' && (f.data as { metrics: { i: number } }).metrics.i === 4);
      const seen = first.frames.filter((f) => f.device_id === d && f.type !== 'snapshot').map((f) => f.seq as number);
      first.close();
      const before = await accepted();
      for (let i = 5; i < 10; i++) await device.telemetry(d, { metrics: { i } });
      await eventually('the hub handled the five sent while nobody listened', async () => (await accepted()) >= before + 5);

      const again = await connect();
      const ack = await again.request({ type: 'subscribe_device', device_id: d, since_seq: seen.at(-1), epoch: snapshot.epoch }, 1);
      expect(ack).toMatchObject({ type: 'ack', recovered: true });
      for (let i = 10; i < 12; i++) await device.telemetry(d, { metrics: { i } });
      await again.next((f) => f.type === 'device_update' && (f.data as { metrics: { i: number } }).metrics.i === 11);
      const resumed = again.frames.filter((f) => f.device_id === d).map((f) => f.seq as number);
      expect(again.ofType('snapshot', d)).toEqual([]);
      expect([...seen, ...resumed]).toEqual([...seen, ...resumed].map((_, i) => i + 1));
      const order = [...first.ofType('device_update', d), ...again.ofType('device_update', d)].map((f) => (f.data as { metrics: { i: number } }).metrics.i);
      expect(order).toEqual([...Array(12).keys()]);

      const stranger = await connect();
      const refused = await stranger.request({ type: 'subscribe_device', device_id: d, since_seq: 1, epoch: 'another-epoch' }, 2);
      expect(refused).toMatchObject({ type: 'ack', recovered: false });
      const fresh = await stranger.next((f) => f.type === 'snapshot' && f.device_id === d);
      expect(fresh.seq).toBe(resumed.at(-1));
    });

    it('subscribe_all carries status changes of every device but not raw telemetry', async () => {
      const d = id();
      const client = await connect();
      expect((await client.request({ type: 'subscribe_all' }, 1)).type).toBe('ack');
      await device.telemetry(d, { battery_level: 10 });
      const change = await client.next((f) => f.type === 'status_change' && f.device_id === d);
      expect(change).toMatchObject({ status: 'online', reason: 'telemetry' });
      await device.telemetry(d, { battery_level: 11 });
      await handled(d, 11);
      await letTimePass(200, 'no device_update may follow the message the hub handled');
      expect(client.ofType('device_update')).toHaveLength(0);
      expect((await client.request({ type: 'unsubscribe_all' }, 2)).type).toBe('ack');
      expect((await client.request({ type: 'unsubscribe_all' }, 3)).error).toMatchObject({ code: 'not_subscribed' });
    });

    it('resumes the * feed with since_fleet_seq and epoch: every fleet frame once, in order, as a client that never left saw it', async () => {
      const fleet = (c: TestClient) => c.frames.filter((f) => f.type !== 'ack' && typeof f.fleet_seq === 'number');
      const watcher = await connect();
      const watched = await watcher.request({ type: 'subscribe_all' }, 1);
      expect(watched).toMatchObject({ type: 'ack', id: 1, epoch: expect.any(String), fleet_seq: expect.any(Number) });
      const dash = await connect();
      const ack = await dash.request({ type: 'subscribe_all' }, 1);
      expect(ack.epoch).toBe(watched.epoch);
      const before = [id(), id(), id()];
      for (const d of before) await device.telemetry(d, { battery_level: 50 });
      await dash.next((f) => f.type === 'status_change' && f.device_id === before[2]);
      const seen = fleet(dash);
      dash.close();
      // While it is away: new devices come online, the earlier ones go offline (1 s timeout).
      const during = [id(), id()];
      for (const d of during) await device.telemetry(d, { battery_level: 40 });
      await watcher.next((f) => f.type === 'status_change' && f.device_id === before[2] && f.status === 'offline', 5000);
      const last = seen.at(-1)?.fleet_seq ?? ack.fleet_seq;

      const again = await connect();
      const resumed = await again.request({ type: 'subscribe_all', since_fleet_seq: last, epoch: ack.epoch }, 2);
      expect(resumed).toMatchObject({ type: 'ack', id: 2, recovered: true, epoch: ack.epoch });
      const after = id();
      await device.telemetry(after, { battery_level: 30 });
      const online = (f: Frame) => f.type === 'status_change' && f.device_id === after;
      await again.next(online);
      await watcher.next(online);
      const joined = [...seen, ...fleet(again)];
      const seqs = joined.map((f) => f.fleet_seq as number);
      expect(seqs, seqs.join(',')).toEqual(seqs.map((_, i) => (ack.fleet_seq as number) + 1 + i));
      const reference = fleet(watcher).filter((f) => (f.fleet_seq as number) > (ack.fleet_seq as number) && (f.fleet_seq as number) <= seqs.at(-1)!);
      expect(joined).toEqual(reference);
      expect(joined.filter((f) => f.type === 'status_change' && f.status === 'online' && during.includes(f.device_id as string))).toHaveLength(2);

      const stranger = await connect();
      expect(await stranger.request({ type: 'subscribe_all', since_fleet_seq: 1, epoch: 'another-epoch' }, 3)).toMatchObject({ type: 'ack', recovered: false });
      const ahead = await connect();
      expect(await ahead.request({ type: 'subscribe_all', since_fleet_seq: seqs.at(-1)! + 1_000_000, epoch: ack.epoch }, 4)).toMatchObject({ type: 'ack', recovered: false });
    });

    it('answers a subscribe unsubscribed before its first frames came, and sends nothing more for it', async () => {
      const d = id();
      const client = await connect();
      client.send({ type: 'subscribe_all', id: 1 });
      client.send({ type: 'unsubscribe_all', id: 2 });
      client.send({ type: 'subscribe_device', device_id: d, id: 3 });
      client.send({ type: 'unsubscribe_device', device_id: d, id: 4 });
      for (const n of [1, 2, 3, 4]) await client.next((f) => f.type === 'ack' && f.id === n);
      await device.telemetry(d, { battery_level: 5 });
      expect(await client.request({ type: 'ping' }, 5)).toEqual({ type: 'pong', id: 5 });
      await handled(d, 5);
      await letTimePass(300, 'no frame of the device may follow the message the hub handled');
      expect(client.frames.filter((f) => f.device_id === d && f.type !== 'snapshot')).toEqual([]);
    });

    it('subscribe_devices: one ack, a snapshot per device in list order, resume per device, all or nothing under WS_MAX_SUBSCRIPTIONS', async () => {
      const [a, b, c] = [id(), id(), id()];
      await device.telemetry(a, { battery_level: 10 });
      // Handled before the request, so no live frame of a may fall between the three snapshots (a
      // device's live frames follow its own first frames, not the whole list's).
      await handled(a, 10);
      const client = await connect();
      const ack = await client.request({ type: 'subscribe_devices', device_ids: [a, b, c, a] }, 1);
      expect(ack).toEqual({ type: 'ack', id: 1 });
      await client.next((f) => f.type === 'snapshot' && f.device_id === c);
      const first = client.frames.slice(client.frames.indexOf(ack) + 1, client.frames.indexOf(ack) + 4);
      expect(first.map((f) => [f.type, f.device_id])).toEqual([['snapshot', a], ['snapshot', b], ['snapshot', c]]);
      const snapA = first[0]!;
      await device.telemetry(b, { battery_level: 20 });
      await client.next((f) => f.type === 'device_update' && f.device_id === b);

      // 3 followed, 3 more asked for: past 5, so none of them is subscribed.
      const [x, y, z] = [id(), id(), id()];
      expect(await client.request({ type: 'subscribe_devices', device_ids: [a, x, y, z] }, 2)).toMatchObject({ type: 'error', id: 2, error: { code: 'subscription_limit' } });
      expect(await client.request({ type: 'unsubscribe_devices', device_ids: [x, y, c] }, 3)).toEqual({ type: 'ack', id: 3, not_subscribed: [x, y] });

      // Another connection resumes a and subscribes b fresh, in one request.
      for (let i = 0; i < 3; i++) await device.telemetry(a, { metrics: { i } });
      await client.next((f) => f.type === 'device_update' && f.device_id === a && (f.data as { metrics: { i?: number } | null }).metrics?.i === 2);
      const missed = client.frames.filter((f) => f.device_id === a && (f.seq as number) > (snapA.seq as number) && f.type !== 'snapshot');
      const other = await connect();
      const resumed = await other.request({ type: 'subscribe_devices', device_ids: [a, b], resume: { [a]: { since_seq: snapA.seq, epoch: snapA.epoch } } }, 4);
      expect(resumed).toEqual({ type: 'ack', id: 4, recovered: { [a]: true } });
      await other.next((f) => f.type === 'snapshot' && f.device_id === b);
      const got = other.frames.slice(other.frames.indexOf(resumed) + 1);
      expect(got.slice(0, missed.length)).toEqual(missed);
      expect(got[missed.length]).toMatchObject({ type: 'snapshot', device_id: b });
      expect(other.ofType('snapshot', a)).toEqual([]);
      expect(await other.request({ type: 'unsubscribe_devices', device_ids: [a, b] }, 5)).toEqual({ type: 'ack', id: 5 });
    });

    it('delivers each frame once to a connection following a device and *, whichever it followed first', async () => {
      const d = id();
      const deviceFirst = await connect();
      await subscribe(deviceFirst, d);
      expect((await deviceFirst.request({ type: 'subscribe_all' }, 1)).type).toBe('ack');
      const allFirst = await connect();
      expect((await allFirst.request({ type: 'subscribe_all' }, 1)).type).toBe('ack');
      await subscribe(allFirst, d);
      await device.telemetry(d, { battery_level: 50, metrics: { probe: 500 } });
      const ownFrames = (c: TestClient) => c.frames.filter((f) => f.device_id === d && f.type !== 'snapshot');
      for (const c of [deviceFirst, allFirst]) {
        await c.next((f) => f.type === 'status_change' && f.device_id === d && f.status === 'offline', 5000);
        const frames = ownFrames(c);
        const seqs = frames.map((f) => f.seq);
        expect(new Set(seqs).size, JSON.stringify(frames)).toBe(seqs.length);
        expect(new Set(frames.map((f) => f.type))).toEqual(new Set(['device_update', 'status_change', 'health_score', 'anomaly_alert']));
        expect(frames.filter((f) => f.type === 'status_change').map((f) => f.status)).toEqual(['online', 'offline']);
      }
      // Leaving `*`: the device's status, health and alerts come on its own channel again, once.
      expect((await deviceFirst.request({ type: 'unsubscribe_all' }, 2)).type).toBe('ack');
      const before = ownFrames(deviceFirst).length;
      await device.telemetry(d, { battery_level: 51 });
      await deviceFirst.next((f) => f.type === 'status_change' && f.device_id === d && f.status === 'offline', 5000, deviceFirst.frames.length);
      const again = ownFrames(deviceFirst).slice(before);
      expect(again.filter((f) => f.type === 'status_change').map((f) => f.status)).toEqual(['online', 'offline']);
      expect(new Set(again.map((f) => f.seq)).size).toBe(again.length);
    });

    it('hands a connection following a device and * every frame of the device in seq order, of every kind', async () => {
      // Each connection follows two devices and `*` (one device before `*`, one after); the devices
      // raise and clear an alert with every other message, so device_update, health_score,
      // anomaly_alert and status_change frames interleave. A frame that comes after one with a
      // higher seq of the same device is one the browser client drops (public/vigil-client.js).
      const pairs = Array.from({ length: 2 }, () => [id(), id()] as const);
      const watchers: TestClient[] = [];
      for (const [before, after] of pairs) {
        const c = await connect();
        await subscribe(c, before);
        expect((await c.request({ type: 'subscribe_all' }, 1)).type).toBe('ack');
        await subscribe(c, after);
        watchers.push(c);
      }
      const messages = 40;
      await publishMany(
        messages,
        async (i) => {
          for (const pair of pairs) for (const d of pair) await device.telemetry(d, { battery_level: 50, metrics: { probe: i % 2 === 0 ? 500 : 0, i } });
        },
        1,
      );
      for (const [w, c] of watchers.entries()) {
        for (const d of pairs[w]!) {
          await c.next((f) => f.type === 'status_change' && f.device_id === d && f.status === 'offline', 10_000);
          const frames = c.frames.filter((f) => f.device_id === d && f.type !== 'snapshot');
          const seqs = frames.map((f) => f.seq as number);
          const outOfOrder = frames.filter((_, k) => k > 0 && seqs[k]! <= seqs[k - 1]!).map((f) => `${f.type}#${f.seq as number}`);
          expect(outOfOrder, `${d}: ${outOfOrder.length} of ${frames.length} frames after a higher seq`).toEqual([]);
          expect(seqs).toEqual(seqs.map((_, k) => k + 1));
          expect(new Set(frames.map((f) => f.type))).toEqual(new Set(['device_update', 'status_change', 'health_score', 'anomaly_alert']));
          expect(c.ofType('device_update', d).map((f) => (f.data as { metrics: { i: number } }).metrics.i)).toEqual([...Array(messages).keys()]);
        }
      }
    });

    it('on a connection following *, no frame of a device overtakes the snapshot of its subscribe', async () => {
      // In a cluster the snapshot comes from the owner a round trip later; the device's alerts and
      // health frames keep coming on `*` meanwhile and must wait behind it, as its updates do.
      const d = id();
      const c = await connect();
      expect((await c.request({ type: 'subscribe_all' }, 1)).type).toBe('ack');
      let publishing = true;
      let i = 0;
      const publisher = Promise.all(
        Array.from({ length: 8 }, async () => {
          while (publishing) await device.telemetry(d, { battery_level: 50, metrics: { probe: i++ % 2 === 0 ? 500 : 0 } });
        }),
      );
      await c.next((f) => f.type === 'anomaly_alert' && f.device_id === d, 5000);
      try {
        for (let round = 0; round < 20; round++) {
          const from = c.frames.length;
          expect((await c.request({ type: 'subscribe_device', device_id: d }, 10 + round)).type).toBe('ack');
          const snapshot = await c.next((f) => f.type === 'snapshot' && f.device_id === d, 5000, from);
          await c.next((f) => f.type === 'anomaly_alert' && f.device_id === d, 5000, c.frames.indexOf(snapshot));
          const at = c.frames.indexOf(snapshot);
          const before = c.frames.slice(from, at).filter((f) => f.device_id === d && (f.seq as number) > (snapshot.seq as number));
          expect(before.map((f) => `${f.type}#${f.seq as number}`), `overtook snapshot #${snapshot.seq as number}`).toEqual([]);
          const after = c.frames.slice(at + 1).filter((f) => f.device_id === d && f.type !== 'snapshot').map((f) => f.seq as number);
          expect(after[0]).toBe((snapshot.seq as number) + 1);
          expect(after.filter((s, k) => k > 0 && s <= after[k - 1]!)).toEqual([]);
        }
      } finally {
        publishing = false;
        await publisher;
      }
    });

    it('stops sending after unsubscribe_device and answers ping with pong', async () => {
      const d = id();
      const client = await connect();
      await subscribe(client, d);
      expect((await client.request({ type: 'unsubscribe_device', device_id: d }, 5)).type).toBe('ack');
      await device.telemetry(d, { battery_level: 1 });
      expect(await client.request({ type: 'ping' }, 6)).toEqual({ type: 'pong', id: 6 });
      await handled(d, 1);
      await letTimePass(200, 'no device_update may follow the message the hub handled');
      expect(client.ofType('device_update', d)).toHaveLength(0);
      expect((await client.request({ type: 'unsubscribe_device', device_id: d }, 7)).error).toMatchObject({ code: 'not_subscribed' });
    });

    it('answers bad frames with an error and keeps the connection open', async () => {
      const client = await connect();
      const cases: [string | Buffer, string][] = [
        ['not json', 'invalid_json'],
        ['[1,2]', 'invalid_message'],
        ['{"no":"type"}', 'invalid_message'],
        ['{"type":"launch_rockets"}', 'unknown_type'],
        ['{"type":"subscribe_device","device_id":"../etc/passwd"}', 'invalid_device_id'],
        ['{"type":"subscribe_device"}', 'invalid_device_id'],
        [JSON.stringify({ type: 'ping', pad: 'x'.repeat(2000) }), 'frame_too_large'],
        [Buffer.from([1, 2, 3]), 'binary_not_supported'],
      ];
      for (const [frame, code] of cases) {
        const before = client.frames.length;
        client.socket.send(frame);
        const error = await client.next((f) => f.type === 'error', 2000, before);
        expect((error.error as { code: string }).code).toBe(code);
      }
      expect(await client.request({ type: 'ping' }, 9)).toEqual({ type: 'pong', id: 9 });
      expect(client.closeCode).toBeNull();
    });

    it('closes a frame over the hard limit with 1009; counts invalid UTF-8, which uWS drops itself', async () => {
      const big = await connect();
      big.socket.send('x'.repeat(70 * 1024)); // over 64 KiB, the hard limit at WS_MAX_FRAME_BYTES 1024
      expect(await big.waitClose()).toBe(1009);
      // uWS checks UTF-8 before the hub sees a text frame and drops the connection without a close
      // frame (so no 1007 can be sent): the hub counts it by reason.
      const garbled = await connect();
      garbled.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
      await garbled.waitClose();
      const text = await (await fetch(httpUrl(hub, '/metrics'))).text();
      expect(text).toMatch(/vigil_ws_closes_total\{reason="message too big"\} [1-9]/);
      expect(text).toMatch(/vigil_ws_closes_total\{reason="invalid utf-8"\} [1-9]/);
    });

    it('refuses subscriptions past the limit with an error', async () => {
      const client = await connect();
      for (let i = 0; i < 5; i++) await subscribe(client, id());
      const refused = await client.request({ type: 'subscribe_device', device_id: id() }, 77);
      expect(refused).toMatchObject({ type: 'error', id: 77, error: { code: 'subscription_limit' } });
      expect(await client.request({ type: 'ping' }, 78)).toEqual({ type: 'pong', id: 78 });
    });

    it('rate-limits a flooding client: one error, then close 4029', async () => {
      const client = await connect();
      for (let i = 0; i < 200; i++) client.send({ type: 'ping' });
      const error = await client.next((f) => f.type === 'error');
      expect(error.error).toMatchObject({ code: 'rate_limited' });
      expect(await client.waitClose()).toBe(4029);
    });

    it('drops each kind of invalid telemetry, counts it by reason, and keeps serving other devices', async () => {
      const bad = id();
      const good = id();
      const client = await connect();
      await subscribe(client, bad);
      await subscribe(client, good);
      const future = new Date(Date.now() + 3600_000).toISOString();
      const invalid: [string, unknown][] = [
        ['invalid_json', '{"battery_level":'],
        ['not_an_object', '[1,2,3]'],
        ['device_id_mismatch', { device_id: 'someone-else' }],
        ['invalid_timestamp', { timestamp: 'yesterday' }],
        ['timestamp_in_future', { timestamp: future }],
        ['timestamp_too_old', { timestamp: 0 }], // 1970: older than RETENTION_DAYS, retention would delete it
        ['invalid_battery_level', { battery_level: 101 }],
        ['invalid_rssi', { rssi: 5 }],
        ['invalid_response_time', { response_time_ms: -1 }],
        ['invalid_error_rate', { error_rate: 1.5 }],
        ['invalid_metrics', { metrics: 'hot' }],
        ['too_many_metrics', { metrics: Object.fromEntries([...Array(65).keys()].map((k) => [`m${k}`, k])) }],
        ['payload_too_large', { metrics: { a: 1 }, pad: 'x'.repeat(17 * 1024) }],
      ];
      for (const [, body] of invalid) await device.telemetry(bad, body);
      await device.raw('bad$id/telemetry', '{}');
      await device.telemetry(good, { battery_level: 70 });
      await client.next((f) => f.type === 'device_update' && f.device_id === good);
      expect(client.frames.filter((f) => f.device_id === bad && f.type !== 'snapshot')).toHaveLength(0);

      const text = await (await fetch(httpUrl(hub, '/metrics'))).text();
      for (const [reason] of [...invalid, ['invalid_device_id']]) {
        expect(text, reason as string).toMatch(new RegExp(`vigil_invalid_messages_total\\{reason="${reason}"\\} [1-9]`));
      }
    });

    it('answers POST /status with a reading older than RETENTION_DAYS 422 timestamp_too_old, counted, nothing stored', async () => {
      const d = id();
      const tooOld = async () => (await hub.metrics.invalidMessages.get()).values.find((v) => v.labels.reason === 'timestamp_too_old')?.value ?? 0;
      const post = (timestamp: string | number) =>
        fetch(httpUrl(hub, '/status'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_id: d, battery_level: 40, timestamp }) });
      const day = 86_400_000;
      const retentionMs = hub.config.RETENTION_DAYS * day;
      const before = await tooOld();
      for (const timestamp of [0, new Date(Date.now() - retentionMs - day).toISOString()]) {
        const res = await post(timestamp);
        expect(res.status, String(timestamp)).toBe(422);
        expect(await res.json()).toEqual({ detail: [{ loc: ['body', 'timestamp'], msg: expect.any(String), type: 'timestamp_too_old' }] });
      }
      expect(await tooOld()).toBe(before + 2);
      expect((await fetch(httpUrl(hub, `/status/${d}`))).status).toBe(404);
      // Inside the window: accepted (its device time is trusted for storage).
      expect((await post(new Date(Date.now() - retentionMs + day).toISOString())).status).toBe(200);
      expect(await tooOld()).toBe(before + 2);
    });

    it('accepts ISO and epoch timestamps and ignores unknown fields', async () => {
      const d = id();
      const client = await connect();
      await subscribe(client, d);
      // An hour ago, in whole seconds (older than RETENTION_DAYS would be refused).
      const base = Math.floor((Date.now() - 3600_000) / 1000) * 1000;
      const iso = new Date(base).toISOString().replace('.000Z', 'Z');
      await device.telemetry(d, { timestamp: iso, device_id: d, firmware: 'x' });
      await device.telemetry(d, { timestamp: base + 1000 });
      await client.next((f) => f.type === 'device_update' && f.timestamp === new Date(base + 1000).toISOString());
      expect(client.ofType('device_update', d)[0]!.timestamp).toBe(new Date(base).toISOString());
    });

    it('marks a silent device offline after its timeout, with the lag under a second', async () => {
      const d = id();
      const client = await connect();
      await subscribe(client, d);
      await device.telemetry(d, {});
      const online = await client.next((f) => f.type === 'status_change' && f.status === 'online');
      const offline = await client.next((f) => f.type === 'status_change' && f.status === 'offline', 5000);
      expect(offline).toMatchObject({ reason: 'timeout', previous: 'online' });
      const silentMs = Date.parse(offline.timestamp as string) - Date.parse(online.timestamp as string);
      expect(silentMs).toBeGreaterThanOrEqual(1000);
      expect(silentMs).toBeLessThan(2000);
    });

    it('heartbeats keep a device online and its Last Will takes it offline at once', async () => {
      const d = id();
      const client = await connect();
      await subscribe(client, d);
      await device.raw(`${d}/heartbeat`, '');
      await client.next((f) => f.type === 'status_change' && f.status === 'online' && f.reason === 'heartbeat');
      await device.raw(`${d}/status`, 'offline');
      const gone = await client.next((f) => f.type === 'status_change' && f.status === 'offline');
      expect(gone.reason).toBe('last_will');
      await device.raw(`${d}/status`, '{"online":true}');
      await client.next((f) => f.type === 'status_change' && f.status === 'online' && (f.seq as number) > (gone.seq as number));
    });

    it('conflates updates for a client that stops reading, without slowing the others', async () => {
      const d = id();
      const slow = await connect();
      const fast = await connect();
      await subscribe(slow, d);
      await subscribe(fast, d);
      slow.socket.pause();
      const total = 3000;
      await publishMany(total, (i) => device.telemetry(d, { metrics: bulkyMetrics(i) }));
      await fast.next((f) => f.type === 'device_update' && (f.data as { metrics: { i: number } }).metrics.i === total - 1, 15_000);
      expect(fast.ofType('device_update', d)).toHaveLength(total);

      const lagging = await (await fetch(httpUrl(hub, '/metrics'))).text();
      expect(lagging).toMatch(/vigil_ws_lag_episodes_total [1-9]/);
      slow.socket.resume();
      const last = await slow.next((f) => f.type === 'device_update' && (f.data as { metrics: { i: number } }).metrics.i === total - 1, 10_000);
      const seen = slow.ofType('device_update', d);
      expect(seen.length).toBeLessThan(total);
      const seqs = seen.map((f) => f.seq as number);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(last.seq).toBe(fast.ofType('device_update', d).at(-1)!.seq);
      expect(slow.closeCode).toBeNull();
    });

    it('closes a client that stays stuck past the deadline with 4008', async () => {
      const d = id();
      const stuck = await connect();
      await subscribe(stuck, d);
      stuck.socket.pause();
      const deadline = Date.now() + 8000;
      // Keep traffic flowing until the hub gives up on the client.
      while (Date.now() < deadline) {
        const text = await (await fetch(httpUrl(hub, '/metrics'))).text();
        if (/vigil_ws_closes_total\{reason="slow consumer"\} [1-9]/.test(text)) break;
        await publishMany(200, (i) => device.telemetry(d, { metrics: bulkyMetrics(i) }));
      }
      stuck.socket.resume();
      expect(await stuck.waitClose()).toBe(4008);
    });

    it('serves /healthz, /readyz with each part, JSON 404 and 405', async () => {
      const health = await fetch(httpUrl(hub, '/healthz'));
      expect(health.status).toBe(200);
      const ready = await fetch(httpUrl(hub, '/readyz'));
      const body = (await ready.json()) as { status: string; checks: Record<string, { ok: boolean }> };
      expect(ready.status).toBe(200);
      expect(body.status).toBe('ready');
      const parts = hub.instanceId === null ? ['broker', 'presence', 'storage'] : ['broker', 'cluster', 'presence', 'storage'];
      expect(Object.keys(body.checks).sort()).toEqual(parts);
      expect(Object.values(body.checks).every((c) => c.ok)).toBe(true);
      const missing = await fetch(httpUrl(hub, '/nope'));
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
      const wrong = await fetch(httpUrl(hub, '/healthz'), { method: 'POST' });
      expect(wrong.status).toBe(405);
    });
  });
}

export type { Frame };
