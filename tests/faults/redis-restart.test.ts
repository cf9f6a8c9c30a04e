import { afterAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { startRedis, stopRedis } from '../helpers/redis-service.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';
import { recordFault } from './fault-report.js';

let hub: RunningHub | undefined;
afterAll(async () => {
  await startRedis(); // whatever happened, leave Redis running for the rest of the suite
  await hub?.stop();
});

it('Redis restarted under load: no missed, duplicated or false transition', async () => {
  hub = await startTestHub('services', { OFFLINE_TIMEOUT_S: '2', PRESENCE_SWEEP_MS: '100' });
  const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
  const watcher = await TestClient.connect(wsUrl(hub));
  await watcher.request({ type: 'subscribe_all' }, 1);
  const run = randomSuffix();
  const steady = Array.from({ length: 20 }, (_, i) => `${run}-steady-${i}`);
  const quitters = Array.from({ length: 5 }, (_, i) => `${run}-quit-${i}`);

  let sending = true;
  const load = (async () => {
    while (sending) {
      await Promise.all(steady.map((id) => device.telemetry(id, { battery_level: 80 })));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  for (const id of quitters) await device.telemetry(id, { battery_level: 10 }); // then silence

  await new Promise((r) => setTimeout(r, 800));
  stopRedis();
  await new Promise((r) => setTimeout(r, 300));
  const ready = await fetch(httpUrl(hub, '/readyz'));
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { failing: string[] }).failing).toContain('presence');
  await new Promise((r) => setTimeout(r, 1200));
  await startRedis();
  const backAt = Date.now();
  while ((await fetch(httpUrl(hub, '/readyz'))).status !== 200 && Date.now() - backAt < 10_000) await new Promise((r) => setTimeout(r, 100));
  const recoveryMs = Date.now() - backAt;

  await new Promise((r) => setTimeout(r, 4000));
  sending = false;
  await load;

  const changes = watcher.ofType('status_change');
  const ours = changes.filter((c) => steady.includes(c.device_id as string) || quitters.includes(c.device_id as string));
  recordFault({
    fault: 'Redis stopped ~1.5 s and restarted (data lost)',
    transitionsExpected: steady.length + quitters.length * 2,
    transitionsSeen: ours.length,
    recoveryMs,
    note: '20 devices reporting: online once; 5 silent: online then offline once',
  });
  for (const id of steady) {
    expect(changes.filter((c) => c.device_id === id).map((c) => c.status), id).toEqual(['online']);
  }
  for (const id of quitters) {
    expect(changes.filter((c) => c.device_id === id).map((c) => c.status), id).toEqual(['online', 'offline']);
  }
  expect((await fetch(httpUrl(hub, '/readyz'))).status).toBe(200);
  watcher.close();
  await device.client.endAsync();
});
