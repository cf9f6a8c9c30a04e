import { afterAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';
import { eventually, letTimePass } from '../helpers/wait.js';

/*
 * #22 item 9 on a real clock: a browser tab that reloads during 10 s of 1 Hz telemetry resumes.
 * The history is a time window (HISTORY_WINDOW_S), not a frame count: 32 frames (the old
 * HISTORY_SIZE) covered ~10-15 messages, since a message brings an update and often a score.
 * Beside it, a hub with a 5 s window refuses the same resume: time, not count, decides.
 */
const hubs: RunningHub[] = [];
const clients: TestClient[] = [];
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(hubs.map((h) => h.stop()));
});

async function awayFor(hub: RunningHub, seconds: number): Promise<{ missed: number; ack: Frame; resumed: TestClient; seenLast: number; deviceId: string }> {
  const d = `tab-${randomSuffix()}`;
  const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
  const tab = await TestClient.connect(wsUrl(hub));
  clients.push(tab);
  await tab.request({ type: 'subscribe_device', device_id: d }, 1);
  const snapshot = await tab.next((f) => f.type === 'snapshot');
  await device.telemetry(d, { battery_level: 90, rssi: -50 });
  await tab.next((f) => f.type === 'device_update');
  const seenLast = Math.max(...tab.frames.filter((f) => f.device_id === d).map((f) => f.seq as number));
  tab.close(); // the tab reloads
  // 1 Hz telemetry while it is away; battery and signal move, so most messages bring a score too.
  for (let i = 0; i < seconds; i++) {
    await letTimePass(1000, 'telemetry at 1 Hz');
    await device.telemetry(d, { battery_level: i % 2 === 0 ? 15 : 95, rssi: i % 2 === 0 ? -95 : -40, metrics: { i } });
  }
  const head = async () => ((await (await fetch(httpUrl(hub, `/status/${d}`))).json()) as { battery_level: number }).battery_level;
  await eventually('the hub handled the last message', async () => (await head()) === (seconds % 2 === 1 ? 15 : 95)).catch(() => undefined);
  const resumed = await TestClient.connect(wsUrl(hub));
  clients.push(resumed);
  const ack = await resumed.request({ type: 'subscribe_device', device_id: d, since_seq: seenLast, epoch: snapshot.epoch }, 2);
  await device.client.endAsync();
  const missed = resumed.frames.filter((f) => f.device_id === d && f.type !== 'snapshot').length;
  return { missed, ack, resumed, seenLast, deviceId: d };
}

it('a tab away for 10 s of 1 Hz telemetry resumes: every missed frame, in order, none twice', async () => {
  const [wide, narrow] = await Promise.all([startTestHub('embedded'), startTestHub('embedded', { HISTORY_WINDOW_S: '5' })]);
  hubs.push(wide, narrow);
  const [ok, gone] = await Promise.all([awayFor(wide, 11), awayFor(narrow, 11)]);

  expect(ok.ack).toMatchObject({ type: 'ack', recovered: true });
  await ok.resumed.next((f) => f.type === 'device_update' && (f.data as { metrics: { i?: number } | null }).metrics?.i === 10);
  const seqs = ok.resumed.frames.filter((f) => f.device_id === ok.deviceId).map((f) => f.seq as number);
  expect(seqs).toEqual(seqs.map((_, i) => ok.seenLast + 1 + i));
  const types = new Set(ok.resumed.frames.filter((f) => f.device_id === ok.deviceId).map((f) => f.type));
  expect(types.has('health_score') && types.has('device_update')).toBe(true);
  expect(ok.resumed.ofType('device_update', ok.deviceId)).toHaveLength(11);
  process.stdout.write(`resume window: ${seqs.length} frames missed over 11 s of 1 Hz telemetry, all recovered\n`);

  // The 5 s window has let the first of them go: a snapshot instead, and the client reloads from it.
  expect(gone.ack).toMatchObject({ type: 'ack', recovered: false });
  await gone.resumed.next((f) => f.type === 'snapshot');
  const metrics = await (await fetch(httpUrl(narrow, '/metrics'))).text();
  expect(metrics).toMatch(/vigil_history_dropped_frames_total\{scope="device",reason="window"\} [1-9]/);
  expect(metrics).toMatch(/vigil_ws_resumes_total\{channel="device",recovered="false"\} 1/);
}, 60_000);
