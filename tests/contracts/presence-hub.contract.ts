import { afterAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startHubWithEnv, testHubEnv, wsUrl, type HubMode } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';
import { eventually, letTimePass } from '../helpers/wait.js';

const SETTINGS = { OFFLINE_TIMEOUT_S: '60', PRESENCE_SWEEP_MS: '100', DEVICE_TYPE_TIMEOUTS: 'fast=1', FLAP_TRANSITIONS: '4', FLAP_WINDOW_S: '60' };

const put = (hub: RunningHub, path: string, body: unknown) =>
  fetch(httpUrl(hub, path), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Presence through the whole hub: timeouts per device and type, flapping, restarts, reads. */
export function runPresenceHubContract(mode: HubMode): void {
  describe(`presence in the hub (${mode})`, () => {
    const env = { ...testHubEnv(mode), ...SETTINGS };
    const hubs: RunningHub[] = [];
    const clients: TestClient[] = [];
    const start = async () => {
      const hub = await startHubWithEnv(env);
      hubs.push(hub);
      return hub;
    };
    const follow = async (hub: RunningHub, deviceId: string) => {
      const client = await TestClient.connect(wsUrl(hub));
      clients.push(client);
      await client.request({ type: 'subscribe_device', device_id: deviceId }, 1);
      return client;
    };
    afterAll(async () => {
      for (const c of clients) c.close();
      for (const h of hubs) await h.stop();
    });

    it('uses a per-device timeout set over REST, and a per-type one from configuration', async () => {
      const hub = await start();
      const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
      const own = `own-${randomSuffix()}`;
      const typed = `typed-${randomSuffix()}`;
      expect((await put(hub, `/devices/${own}`, { offline_timeout_s: 1 })).status).toBe(200);
      const typedReply = await put(hub, `/devices/${typed}`, { type: 'fast' });
      expect(await typedReply.json()).toMatchObject({ effective_offline_timeout_s: 1 });
      for (const id of [own, typed]) {
        const client = await follow(hub, id);
        await device.telemetry(id, { battery_level: 50 });
        const online = await client.next((f) => f.type === 'status_change' && f.status === 'online');
        const offline = await client.next((f) => f.type === 'status_change' && f.status === 'offline', 4000);
        const silent = Date.parse(offline.timestamp as string) - Date.parse(online.last_seen as string);
        expect(silent).toBeGreaterThanOrEqual(1000);
        expect(silent).toBeLessThan(2000);
      }
      await device.client.endAsync();
      await hub.stop();
    });

    it('flags a device that toggles too often as flapping, still reporting each change', async () => {
      const hub = await start();
      const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
      const id = `flappy-${randomSuffix()}`;
      const client = await follow(hub, id);
      for (const word of ['online', 'offline', 'online', 'offline']) {
        await device.raw(`${id}/status`, word);
        await client.next((f) => f.type === 'status_change' && f.status === word && client.ofType('status_change').length > 0);
      }
      await client.next(() => client.ofType('status_change').length === 4);
      const changes = client.ofType('status_change');
      expect(changes.map((c) => c.flapping)).toEqual([false, false, false, true]);
      expect(await (await fetch(httpUrl(hub, `/status/${id}`))).json()).toMatchObject({ status: 'offline', flapping: true });
      await device.client.endAsync();
      await hub.stop();
    });

    it('after a restart, a device that went silent while the hub was down is offline as reconcile', async () => {
      const first = await start();
      const id = `sleeper-${randomSuffix()}`;
      await put(first, `/devices/${id}`, { offline_timeout_s: 1 });
      let device = await deviceClient(first, first.config.MQTT_TOPIC_PREFIX);
      const client = await follow(first, id);
      await device.telemetry(id, { battery_level: 42 });
      await client.next((f) => f.type === 'device_update');
      // Its presence touch written (batched) before the hub goes, as in any running hub; first.stop()
      // flushes the writer, so the device's state is stored too.
      await eventually('the device present in the presence store', async () => {
        const batch = (await (await fetch(httpUrl(first, '/status/batch'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_ids: [id] }) })).json()) as { devices: { present: boolean }[] };
        return batch.devices[0]?.present === true;
      });
      // Stop within the device's 1 s timeout: nobody sees it go offline live.
      await first.stop();
      expect(client.ofType('status_change').map((c) => c.status)).toEqual(['online']);
      await device.client.endAsync();

      await letTimePass(1800, 'the device\'s 1 s timeout passes while no hub runs');
      const second = await start();
      const after = await follow(second, id);
      const snapshot = await after.next((f) => f.type === 'snapshot');
      expect(snapshot.data).toMatchObject({ telemetry: { battery_level: 42 } });
      // Judged once the broker's backlog is read (docs/presence.md): in the snapshot, or just after it.
      if ((snapshot.data as { status: string }).status !== 'offline') {
        expect(await after.next((f) => f.type === 'status_change' && f.status === 'offline')).toMatchObject({ reason: 'reconcile' });
      }
      // The transition was stored (by the batched writer: poll), marked as found after the fact.
      type History = { history: { status: string; reason: string }[] };
      let history: History = { history: [] };
      await eventually('the offline transition stored', async () => {
        history = (await (await fetch(httpUrl(second, `/status/${id}/history?kind=status`))).json()) as History;
        return history.history[0]?.status === 'offline';
      });
      expect(history.history[0]).toMatchObject({ status: 'offline', reason: 'reconcile' });
      expect(history.history.filter((h) => h.status === 'offline')).toHaveLength(1);
      device = await deviceClient(second, second.config.MQTT_TOPIC_PREFIX);
      await device.telemetry(id, { battery_level: 41 });
      await after.next((f) => f.type === 'status_change' && f.status === 'online');
      let uptime = { uptime_ratio: 0, transitions: 0 };
      await eventually('the online transition stored', async () => {
        uptime = (await (await fetch(httpUrl(second, `/devices/${id}/uptime?window_s=3600`))).json()) as { uptime_ratio: number; transitions: number };
        return uptime.transitions >= 3;
      });
      expect(uptime.transitions).toBe(3);
      expect(uptime.uptime_ratio).toBeGreaterThan(0);
      expect(uptime.uptime_ratio).toBeLessThan(1);
      await device.client.endAsync();
      await second.stop();
    });

    it('answers status reads: one device, summary, batch, and the seed errors', async () => {
      const hub = await start();
      const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
      const id = `read-${randomSuffix()}`;
      const client = await follow(hub, id);
      // A recent whole second (readings older than RETENTION_DAYS are refused) and its hour.
      const at = Math.floor(Date.now() / 1000) * 1000 - 1000;
      const hour = Math.floor(at / 3600_000) * 3600_000;
      const iso = (ms: number) => new Date(ms).toISOString();
      await device.telemetry(id, { battery_level: 76, rssi: -60, timestamp: iso(at) });
      await client.next((f) => f.type === 'device_update');
      // The status read answers from the hub's state; poll in case the message is still on its way.
      await eventually('the status read shows the reading, online', async () => {
        expect(await (await fetch(httpUrl(hub, `/status/${id}`))).json()).toMatchObject({
          device_id: id,
          timestamp: iso(at),
          battery_level: 76,
          rssi: -60,
          online: true,
        });
        return true;
      });
      const missing = await fetch(httpUrl(hub, '/status/nobody-here'));
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ detail: 'Device nobody-here not found' });
      const summary = (await (await fetch(httpUrl(hub, '/status/summary'))).json()) as { total_devices: number; online_devices: number; devices: { device_id: string }[] };
      expect(summary.devices.some((d) => d.device_id === id)).toBe(true);
      expect(summary.online_devices).toBeGreaterThanOrEqual(1);
      // `present` is the presence store's word, written by its batched touches: poll until it has it.
      await eventually('the batch read shows the device present', async () => {
        const batch = await fetch(httpUrl(hub, '/status/batch'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_ids: [id, 'ghost'] }) });
        expect(await batch.json()).toMatchObject({ devices: [{ device_id: id, online: true, present: true }, { device_id: 'ghost', status: 'unknown', present: false }] });
        return true;
      });
      const bad = await fetch(httpUrl(hub, '/status/batch'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device_ids: ['a/b'] }) });
      expect(bad.status).toBe(422);
      expect(((await bad.json()) as { detail: { loc: unknown[] }[] }).detail[0]!.loc).toEqual(['body', 'device_ids', 0]);
      expect((await fetch(httpUrl(hub, '/status/batch'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' })).status).toBe(400);
      expect((await fetch(httpUrl(hub, '/status/batch'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(70_000) })).status).toBe(413);
      const history = (await (await fetch(httpUrl(hub, `/status/${id}/history?limit=10`))).json()) as { history: unknown[]; total_records: number };
      expect(history.history.length).toBeLessThanOrEqual(1);
      // The writer flushes every 200 ms: poll until the reading is stored.
      await eventually('the reading stored in its hour', async () => {
        const charts = (await (await fetch(httpUrl(hub, `/devices/${id}/metrics?bucket=1h&from=${iso(hour - 3600_000)}&to=${iso(hour + 3600_000)}`))).json()) as { buckets: { count: number; battery_level: { avg: number } }[] };
        expect(charts.buckets).toEqual([expect.objectContaining({ start: iso(hour), count: 1, battery_level: { avg: 76, min: 76, max: 76 } })]);
        return true;
      });
      expect((await fetch(httpUrl(hub, `/devices/${id}/metrics?bucket=5m`))).status).toBe(422);
      await device.client.endAsync();
      await hub.stop();
    });
  });
}
