import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';
import { letTimePass } from '../helpers/wait.js';

/*
 * LEARNED_TIMEOUTS=true on a real hub (embedded broker, database and presence): a device reporting
 * every 200 ms gets a learned timeout (clamped to LEARNED_TIMEOUT_MIN_S), shown with its source in
 * GET /status/{id}, GET /devices/{id} and the snapshot, and goes offline by it — long before the
 * fixed OFFLINE_TIMEOUT_S; an explicit device setting beats it.
 */
let hub: RunningHub;
let device: Awaited<ReturnType<typeof deviceClient>>;
const id = `lt-${randomSuffix()}`;

beforeAll(async () => {
  hub = await startTestHub('embedded', { LEARNED_TIMEOUTS: 'true', LEARNED_TIMEOUT_MIN_S: '1', LEARNED_TIMEOUT_MIN_SAMPLES: '4', OFFLINE_TIMEOUT_S: '120', PRESENCE_SWEEP_MS: '50' });
  device = await deviceClient(hub, 'devices');
}, 30_000);

afterAll(async () => {
  await device?.client.endAsync();
  await hub?.stop();
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const status = async () => (await (await fetch(httpUrl(hub, `/status/${id}`))).json()) as Record<string, unknown>;

it('learns a device timeout from its intervals, shows its source, and times the device out by it', async () => {
  await device.telemetry(id, { battery_level: 90 });
  await until('the device is known', async () => (await fetch(httpUrl(hub, `/status/${id}`))).status === 200);
  expect(await status()).toMatchObject({ offline_timeout_s: 120, offline_timeout_source: 'default' });
  await until('a learned timeout', async () => {
    await device.telemetry(id, { battery_level: 90 });
    await letTimePass(200, 'a message every 200 ms: the interval the hub learns');
    return (await status()).offline_timeout_source === 'learned';
  });
  expect(await status()).toMatchObject({ status: 'online', offline_timeout_s: 1, offline_timeout_source: 'learned' });
  const view = (await (await fetch(httpUrl(hub, `/devices/${id}`))).json()) as Record<string, unknown>;
  expect(view).toMatchObject({ offline_timeout_s: null, effective_offline_timeout_s: 1, offline_timeout_source: 'learned' });

  const ws = await TestClient.connect(wsUrl(hub));
  expect((await ws.request({ type: 'subscribe_device', device_id: id }, 1)).type).toBe('ack');
  const snapshot = await ws.next((f) => f.type === 'snapshot');
  expect(snapshot.data).toMatchObject({ offline_timeout_s: 1, offline_timeout_source: 'learned' });
  // Silent now: offline after about a second, not after OFFLINE_TIMEOUT_S=120.
  const silentAt = Date.now();
  const offline = await ws.next((f) => f.type === 'status_change' && f.status === 'offline', 10_000);
  expect(offline).toMatchObject({ device_id: id, reason: 'timeout' });
  // Learned ≈ 1 s (the clamp) after the last message; the fixed timeout would have taken 120 s.
  expect(Date.parse(offline.timestamp as string) - Date.parse(offline.last_seen as string)).toBeLessThan(3000);
  expect(Date.now() - silentAt).toBeLessThan(10_000);
  ws.close();

  // An explicit setting wins over what was learned.
  const put = await fetch(httpUrl(hub, `/devices/${id}`), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ offline_timeout_s: 30 }) });
  expect(put.status).toBe(200);
  expect(await status()).toMatchObject({ offline_timeout_s: 30, offline_timeout_source: 'device' });
}, 40_000);
