import { afterAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';
import { recordFault } from './fault-report.js';

let hub: RunningHub | undefined;
const clients: TestClient[] = [];
afterAll(async () => {
  for (const c of clients) c.close();
  await hub?.stop();
});

/** ~5 KB per message, so a client that stops reading fills its buffers within a second. */
const bulky = (i: number) => Object.fromEntries([['i', i], ...Array.from({ length: 63 }, (_, k) => [`reading_${k}_`.padEnd(60, 'x'), i + k])]);

it('a client that stops reading and one that floods requests, under load: everyone else gets every update', async () => {
  hub = await startTestHub('services', { WS_SLOW_CLIENT_DEADLINE_S: '2', WS_LAG_BYTES: '65536', WS_LAG_CHECK_MS: '20', WS_MAX_MESSAGES_PER_S: '50' });
  const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
  const d = `abuse-${randomSuffix()}`;
  const connect = async () => {
    const c = await TestClient.connect(wsUrl(hub!));
    clients.push(c);
    await c.request({ type: 'subscribe_device', device_id: d }, 1);
    return c;
  };
  const [reader, stuck, flooder] = [await connect(), await connect(), await connect()];
  stuck.socket.pause();

  // At least 3,000 messages, and on until the hub has given up on the stuck client (at most 15 s).
  const started = Date.now();
  let sent = 0;
  // (The paused client cannot read its close frame; the hub's own count says when it gave up.)
  const gaveUp = async () => /vigil_ws_closes_total\{reason="slow consumer"\} [1-9]/.test(await (await fetch(httpUrl(hub!, '/metrics'))).text());
  const load = (async () => {
    while (sent < 3000 || (!(await gaveUp()) && Date.now() - started < 15_000)) {
      await Promise.all(Array.from({ length: 50 }, () => device.telemetry(d, { metrics: bulky(sent++) })));
    }
  })();
  for (let i = 0; i < 500; i++) flooder.send({ type: 'ping', id: i });
  await load;
  const total = sent;
  await reader.next((f) => f.type === 'device_update' && (f.data as { metrics: { i: number } }).metrics.i === total - 1, 20_000).catch(() => null);
  const seconds = (Date.now() - started) / 1000;
  stuck.socket.resume();
  const closedStuck = await stuck.waitClose(10_000).catch(() => null);
  const closedFlooder = await flooder.waitClose(5000).catch(() => null);
  const healthy = (await fetch(httpUrl(hub, '/healthz'))).status;
  recordFault({
    fault: 'WS client stops reading + one floods 500 requests',
    accepted: total,
    pushed: reader.ofType('device_update', d).length,
    note: `stuck closed ${closedStuck}, flooder closed ${closedFlooder}; ${(total / seconds).toFixed(0)} msg/s of ~5 KB meanwhile`,
  });
  expect(reader.ofType('device_update', d)).toHaveLength(total);
  expect(closedStuck).toBe(4008);
  expect(closedFlooder).toBe(4029);
  expect(flooder.ofType('error').map((e) => (e.error as { code: string }).code)).toContain('rate_limited');
  expect(healthy).toBe(200);
  await device.client.endAsync();
}, 60_000);
