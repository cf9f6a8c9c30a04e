import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import type { Telemetry } from '../../src/domain/telemetry.js';
import { deviceClient, httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * An internal fault (a bug: here a hub method made to throw for one device) at each entry of a
 * real hub: the one message, request or tick fails, is answered as `internal` where there is
 * someone to answer, is counted, and every other one goes on.
 */

let hub: RunningHub;
let device: Awaited<ReturnType<typeof deviceClient>>;
const clients: TestClient[] = [];

const POISON = 'poison-device';
const fault = () => new Error('injected fault: postgres://vigil:injected-secret@db/vigil');

const errorsAt = async (entry: string) => (await hub.metrics.internalErrors.get()).values.find((v) => v.labels.entry === entry)?.value ?? 0;

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  hub = await startTestHub('embedded', { OFFLINE_ALERT_CHECK_S: '0.1', OFFLINE_TIMEOUT_S: '1' });
  device = await deviceClient(hub, 'devices');
  // Injected faults: one device's telemetry and snapshot throw, as a bug in their handling would.
  const core = hub.hub;
  const ingest = core.ingestTelemetry.bind(core);
  core.ingestTelemetry = (t: Telemetry) => {
    if (t.deviceId === POISON) throw fault();
    return ingest(t);
  };
  // The subscription service builds the snapshots a subscriber gets first.
  const subscriptions = core.subscriptions;
  const snapshot = subscriptions.snapshot.bind(subscriptions);
  subscriptions.snapshot = (id: string) => {
    if (id === POISON) throw fault();
    return snapshot(id);
  };
});

afterAll(async () => {
  for (const c of clients) c.close();
  await device?.client.endAsync();
  await hub?.stop();
});

it('MQTT: a message whose handling throws is counted; the other devices are handled', async () => {
  await device.telemetry(POISON, { battery_level: 1 });
  await device.telemetry('healthy-device', { battery_level: 2 });
  await waitFor(() => hub.hub.registry.get('healthy-device')?.telemetry?.batteryLevel === 2, 'the next message handled');
  await waitFor(async () => (await errorsAt('mqtt')) === 1, 'mqtt fault counted');
  await device.telemetry('healthy-device', { battery_level: 3 });
  await waitFor(() => hub.hub.registry.get('healthy-device')?.telemetry?.batteryLevel === 3, 'ingest goes on');
});

it('WebSocket: a request whose handling throws gets an `internal` error frame; the connection goes on', async () => {
  const client = await TestClient.connect(wsUrl(hub));
  clients.push(client);
  const answer = await client.request({ type: 'subscribe_device', device_id: POISON }, 7);
  expect(answer).toEqual({ type: 'error', id: 7, error: { code: 'internal', message: 'internal error; the request was not completed' } });
  expect(await errorsAt('ws')).toBe(1);
  expect((await client.request({ type: 'subscribe_device', device_id: 'healthy-device' }, 8)).type).toBe('ack');
  expect((await client.request({ type: 'ping' }, 9)).type).toBe('pong');
  expect(client.closeCode).toBeNull();
  expect(JSON.stringify(client.frames)).not.toContain('injected');
});

it('timers: a tick that throws is counted and the next tick runs', async () => {
  const core = hub.hub;
  const sweepOffline = core.sweepOffline.bind(core);
  let ticks = 0;
  core.sweepOffline = () => {
    ticks++;
    if (ticks === 1) throw fault();
    sweepOffline();
  };
  await waitFor(() => ticks >= 3, 'offline checks go on after a failing one');
  expect(await errorsAt('offline_check')).toBe(1);
  core.sweepOffline = sweepOffline;
});

it('HTTP: a failing handler answers 500 with the request id and no internals', async () => {
  hub.hub.owner.serve({
    health: () => {
      throw fault();
    },
  });
  const failed = await fetch(httpUrl(hub, '/devices/healthy-device/health'), { headers: { 'x-request-id': 'req-boundary-1' } });
  expect(failed.status).toBe(500);
  expect(await failed.json()).toEqual({ detail: 'internal error', error: { code: 'internal', message: 'internal error', request_id: 'req-boundary-1' } });
  expect(await errorsAt('http')).toBe(1);
  expect((await fetch(httpUrl(hub, '/healthz'))).status).toBe(200);
});
