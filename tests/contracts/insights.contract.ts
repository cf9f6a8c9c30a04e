import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startHubWithEnv, testHubEnv, wsUrl, type HubMode } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { eventually, letTimePass } from '../helpers/wait.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';

const SETTINGS = {
  OFFLINE_TIMEOUT_S: '60',
  OFFLINE_ALERT_MINUTES: '0.03', // 1.8 s
  OFFLINE_ALERT_CHECK_S: '0.2',
  HEALTH_SWEEP_CRON: '* * * * * *', // every second, so the test sees the sweep
  ALERT_RULES: JSON.stringify([{ type: 'overheating', metric: 'metrics.temperature', op: '>', raise: 30, clear: 28, severity: 'critical', for_s: 1 }]),
  PRESENCE_SWEEP_MS: '100',
};

type Device = Awaited<ReturnType<typeof deviceClient>>;
const alertFrames = (c: TestClient, deviceId: string, type?: string) =>
  c.ofType('anomaly_alert', deviceId).filter((f) => type === undefined || f.anomaly_type === type);

/** Health scores and alerts end to end: MQTT telemetry in, WebSocket frames and REST out. */
export function runInsightsContract(mode: HubMode): void {
  describe(`health and alerts (${mode})`, () => {
    let hub: RunningHub;
    let device: Device;
    const clients: TestClient[] = [];
    const follow = async (deviceId: string) => {
      const client = await TestClient.connect(wsUrl(hub));
      clients.push(client);
      await client.request({ type: 'subscribe_device', device_id: deviceId }, 1);
      return client;
    };
    const send = (id: string, body: Record<string, unknown>) => device.telemetry(id, body);
    const waitAlert = (c: TestClient, id: string, type: string, state: string, timeout = 4000): Promise<Frame> =>
      c.next((f) => f.type === 'anomaly_alert' && f.device_id === id && f.anomaly_type === type && f.state === state, timeout);
    /** No alert frame may come: the assertion is about an absence, so the wait is the point. */
    const quiet = (ms = 300) => letTimePass(ms, 'no further alert frame arrives');
    /** The hub judged the device's first `count` messages (each pushes a device_update before its alerts). */
    const judged = (c: TestClient, id: string, count: number) => eventually(`${count} device_update frames of ${id}`, () => c.ofType('device_update', id).length >= count);

    beforeAll(async () => {
      hub = await startHubWithEnv({ ...testHubEnv(mode), ...SETTINGS });
      device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
    });
    afterAll(async () => {
      for (const c of clients) c.close();
      await device?.client.endAsync();
      await hub?.stop();
    });

    it('low battery: raised under 20, held between 20 and 25 (hysteresis), cleared at 25', async () => {
      const id = `bat-${randomSuffix()}`;
      const c = await follow(id);
      await send(id, { battery_level: 19 });
      const raised = await waitAlert(c, id, 'low_battery', 'raised');
      expect(raised).toMatchObject({ severity: 'minor', data: { value: 19, threshold: 20 } });
      await send(id, { battery_level: 22 });
      await send(id, { battery_level: 18 });
      await judged(c, id, 3);
      await quiet();
      expect(alertFrames(c, id, 'low_battery')).toHaveLength(1);
      await send(id, { battery_level: 25 });
      const cleared = await waitAlert(c, id, 'low_battery', 'cleared');
      expect(cleared.alert_id).toBe(raised.alert_id);
    });

    it('performance degradation needs 5 samples whose mean of the last 10 passes 1000 ms', async () => {
      const id = `slow-${randomSuffix()}`;
      const c = await follow(id);
      for (let i = 0; i < 4; i++) await send(id, { response_time_ms: 1500 });
      await judged(c, id, 4);
      await quiet();
      expect(alertFrames(c, id)).toHaveLength(0);
      await send(id, { response_time_ms: 1500 });
      await waitAlert(c, id, 'performance_degradation', 'raised');
      for (let i = 0; i < 10; i++) await send(id, { response_time_ms: 100 });
      await waitAlert(c, id, 'performance_degradation', 'cleared');
    });

    it('error-rate spike over 10 %, cleared at 5 %', async () => {
      const id = `err-${randomSuffix()}`;
      const c = await follow(id);
      await send(id, { error_rate: 0.2 });
      await waitAlert(c, id, 'error_rate_spike', 'raised');
      await send(id, { error_rate: 0.08 });
      await judged(c, id, 2);
      await quiet();
      expect(alertFrames(c, id, 'error_rate_spike').map((f) => f.state)).toEqual(['raised']);
      await send(id, { error_rate: 0.04 });
      await waitAlert(c, id, 'error_rate_spike', 'cleared');
    });

    it('a configured rule waits its minimum duration before raising', async () => {
      const id = `hot-${randomSuffix()}`;
      const c = await follow(id);
      await send(id, { metrics: { temperature: 35 } });
      await judged(c, id, 1);
      await quiet(500);
      expect(alertFrames(c, id)).toHaveLength(0);
      await letTimePass(600, 'the rule\'s 1 s minimum duration passes');
      await send(id, { metrics: { temperature: 36 } });
      const raised = await waitAlert(c, id, 'overheating', 'raised');
      expect(raised).toMatchObject({ severity: 'critical' });
    });

    it('two messages sent together raise one alert', async () => {
      const id = `twin-${randomSuffix()}`;
      const c = await follow(id);
      await Promise.all([send(id, { battery_level: 5 }), send(id, { battery_level: 4 })]);
      await waitAlert(c, id, 'low_battery', 'raised');
      await judged(c, id, 2);
      await quiet(500);
      expect(alertFrames(c, id, 'low_battery')).toHaveLength(1);
      const listed = (await (await fetch(httpUrl(hub, `/alerts?state=active&device_id=${id}`))).json()) as { alerts: unknown[] };
      expect(listed.alerts).toHaveLength(1);
    });

    it('a flapping device raises one offline alert, not a storm, and it clears when the device returns', async () => {
      const id = `flap-${randomSuffix()}`;
      const c = await follow(id);
      for (let i = 0; i < 4; i++) {
        // Flapping is transitions apart in time: each one is its own, 150 ms after the last.
        await device.raw(`${id}/status`, 'online');
        await letTimePass(150, 'a flap lasts 150 ms');
        await device.raw(`${id}/status`, 'offline');
        await letTimePass(150, 'a flap lasts 150 ms');
      }
      const raised = await waitAlert(c, id, 'device_offline', 'raised', 5000);
      await quiet(1000);
      expect(alertFrames(c, id, 'device_offline')).toHaveLength(1);
      await device.raw(`${id}/status`, 'online');
      const cleared = await waitAlert(c, id, 'device_offline', 'cleared');
      expect(cleared.alert_id).toBe(raised.alert_id);
    });

    it('acknowledges over REST and over WebSocket; the snapshot carries the score and active alerts', async () => {
      const id = `ack-${randomSuffix()}`;
      const c = await follow(id);
      await send(id, { battery_level: 3, error_rate: 0.5 });
      const battery = await waitAlert(c, id, 'low_battery', 'raised');
      const errors = await waitAlert(c, id, 'error_rate_spike', 'raised');
      const rest = await fetch(httpUrl(hub, `/alerts/${battery.alert_id as string}/ack`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by: 'alice' }) });
      expect(rest.status).toBe(200);
      expect(await rest.json()).toMatchObject({ state: 'acknowledged', acknowledged_by: 'alice' });
      await waitAlert(c, id, 'low_battery', 'acknowledged');
      expect(await c.request({ type: 'ack_alert', alert_id: errors.alert_id }, 42)).toEqual({ type: 'ack', id: 42 });
      await waitAlert(c, id, 'error_rate_spike', 'acknowledged');
      expect((await c.request({ type: 'ack_alert', alert_id: '00000000-0000-0000-0000-000000000000' }, 43)).error).toMatchObject({ code: 'alert_not_found' });
      expect((await fetch(httpUrl(hub, '/alerts/nope/ack'), { method: 'POST' })).status).toBe(404);

      const late = await TestClient.connect(wsUrl(hub));
      clients.push(late);
      await late.request({ type: 'subscribe_device', device_id: id }, 1);
      const snapshot = await late.next((f) => f.type === 'snapshot');
      const data = snapshot.data as { health: { score: number }; active_alerts: { anomaly_type: string; state: string }[] };
      expect(typeof data.health.score).toBe('number');
      expect(data.active_alerts.map((a) => [a.anomaly_type, a.state]).sort()).toEqual([
        ['error_rate_spike', 'acknowledged'],
        ['low_battery', 'acknowledged'],
      ]);
    });

    it('deleting a device ends its active alerts (device_deleted): frame, stored row, no longer active; a new device of that id starts afresh', async () => {
      const id = `del-${randomSuffix()}`;
      const c = await follow(id);
      await send(id, { battery_level: 5 });
      const raised = await waitAlert(c, id, 'low_battery', 'raised');
      const deleted = await fetch(httpUrl(hub, `/devices/${id}`), { method: 'DELETE' });
      expect(deleted.status).toBe(200);
      const cleared = await waitAlert(c, id, 'low_battery', 'cleared');
      expect(cleared).toMatchObject({ alert_id: raised.alert_id, data: expect.objectContaining({ cleared_because: 'device_deleted' }) });
      await eventually('the cleared alert is stored and no longer listed as active', async () => {
        const alerts = async (state: string) => ((await (await fetch(httpUrl(hub, `/alerts?state=${state}&device_id=${id}`))).json()) as { alerts: { alert_id: string; state: string }[] }).alerts;
        const [active, all] = [await alerts('active'), await alerts('all')];
        return active.length === 0 && all.some((a) => a.alert_id === raised.alert_id && a.state === 'cleared');
      });
      await send(id, { battery_level: 90 });
      await c.next((f) => f.type === 'device_update' && f.device_id === id);
      let count: number | null = null;
      await eventually('the device is back', async () => {
        const r = await fetch(httpUrl(hub, `/devices/${id}/metrics/summary`));
        count = r.status === 200 ? ((await r.json()) as { last_24h: { message_count: number } }).last_24h.message_count : null;
        return count !== null;
      });
      expect(count).toBe(1);
    });

    it('scores move as documented, and the sweep re-scores a device that went quiet', async () => {
      const id = `score-${randomSuffix()}`;
      const c = await follow(id);
      await fetch(httpUrl(hub, `/devices/${id}`), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ offline_timeout_s: 8 }) });
      await send(id, { battery_level: 100, rssi: -50, error_rate: 0, response_time_ms: 100 });
      await c.next((f) => f.type === 'device_update');
      await c.next((f) => f.type === 'health_score' && f.score === 100);
      const perfect = (await (await fetch(httpUrl(hub, `/devices/${id}/health`))).json()) as { score: number; components: object };
      expect(perfect.score).toBe(100);
      expect(Object.keys(perfect.components).sort()).toEqual(['availability', 'battery', 'error_rate', 'freshness', 'response_time', 'signal']);
      await letTimePass(1100, 'scoring on telemetry is at most once a second per device');
      await send(id, { battery_level: 30, rssi: -50, error_rate: 0, response_time_ms: 100 });
      // battery 30 % scores 50 (linear 10 → 50 %); weighted: (30·100 + 20·50 + 15·100 + 15·100 + 10·100 + 10·100) / 100 = 90
      const lower = await c.next((f) => f.type === 'health_score' && f.score === 90);
      expect(lower.previous).toBe(100);
      // Silent for more than a quarter of its 8 s timeout: the sweep lowers freshness without any message.
      const swept = await c.next((f) => f.type === 'health_score' && (f.components as { freshness: { score: number } }).freshness.score < 100, 6000);
      expect(swept.score as number).toBeLessThan(90);

      const health = (await (await fetch(httpUrl(hub, `/devices/${id}/health`))).json()) as { score: number; trend: { points: unknown[] } };
      expect(typeof health.score).toBe('number');
      const fleet = (await (await fetch(httpUrl(hub, '/health/devices?worst=3'))).json()) as { devices: number; worst: unknown[]; distribution: Record<string, number> };
      expect(fleet.devices).toBeGreaterThan(0);
      expect(fleet.worst.length).toBeLessThanOrEqual(3);
      const summary = (await (await fetch(httpUrl(hub, `/devices/${id}/metrics/summary`))).json()) as { recent: { message_count: number }; last_24h: { avg_battery_level: number } };
      expect(summary.recent.message_count).toBe(2);
      expect(summary.last_24h.avg_battery_level).toBe(65);
    });
  });
}
