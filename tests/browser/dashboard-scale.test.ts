import { createServer, type AddressInfo } from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { launchChromium, watchedPage } from './browser-page.js';

/**
 * The dashboard at fleet scale: 10,000 devices. The hub runs as its own process (with its embedded
 * broker), so the test's publisher and Playwright do not compete with it for one event loop.
 */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

let hub: HubProcess;
let browser: Browser;
let page: Page;
let problems: string[];
let client: MqttClient;
let base: string;
const row = (id: string) => page.locator(`.tbody .tr[data-id="${id}"]`);

beforeAll(async () => {
  const env = { PORT: String(await freePort()), MQTT_PORT: String(await freePort()), DATA_DIR: `/tmp/vigil-browser-scale-${Date.now()}` };
  hub = await spawnHub(env);
  base = `http://127.0.0.1:${env.PORT}`;
  client = await connectAsync(`mqtt://127.0.0.1:${env.MQTT_PORT}`, { clientId: `scale-${Date.now()}`, reconnectPeriod: 0 });
  browser = await launchChromium();
  ({ page, problems } = await watchedPage(await browser.newContext({ viewport: { width: 1280, height: 900 } })));
});

afterAll(async () => {
  await browser?.close();
  await client?.endAsync();
  await hub?.stop();
});

it('applies fleet_summary frames naming 10,000 changed devices every second with no main-thread task over 50 ms', async () => {
  // The frame format of docs/websocket-protocol.md, built in the page and handed to the dashboard's
  // store as the WebSocket handler does (JSON.parse included): the page's side of the cost, whatever
  // the hub's pace. The test below measures the same through the hub.
  await page.goto(`${base}/`);
  await page.waitForSelector('#connection.up');
  const result = (await page.evaluate(`(async () => {
    const store = await import('/fleet-store.js');
    let longest = 0, longTasks = 0;
    new PerformanceObserver((list) => { for (const e of list.getEntries()) { longTasks++; longest = Math.max(longest, e.duration); } }).observe({ type: 'longtask' });
    const frame = (round, full) => JSON.stringify({ type: 'fleet_summary', full, ...(full ? { last: true } : {}), timestamp: new Date().toISOString(),
      devices: Array.from({ length: 10000 }, (_, i) => ({ id: 'synthetic-' + i, type: ['sensor', 'gateway', 'meter'][i % 3], name: null, status: (i + round) % 17 === 0 ? 'offline' : 'online',
        last_seen: new Date().toISOString(), battery_level: (i + round) % 100, rssi: -50 - ((i + round) % 40), score: 50 + ((i * 7 + round) % 50), active_alerts: (i + round) % 23 === 0 ? 1 : 0, flapping: false })), removed: [] });
    const texts = [frame(0, true), ...Array.from({ length: 8 }, (_, r) => frame(r + 1, false))];
    // The observer sees long tasks here: an 80 ms task is reported (else the figure below means nothing).
    await new Promise((r) => setTimeout(() => { const end = performance.now() + 80; while (performance.now() < end); r(); }, 0));
    await new Promise((r) => setTimeout(r, 300));
    const observed = longest;
    longest = 0; longTasks = 0;
    for (const text of texts) {
      store.publish(JSON.parse(text));
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { observed, longest, longTasks, bytes: texts[1].length, devices: store.devices.size };
  })()`)) as { observed: number; longest: number; longTasks: number; bytes: number; devices: number };
  expect(result.observed).toBeGreaterThanOrEqual(80);
  process.stdout.write(`dashboard: 9 fleet_summary frames of 10,000 devices (${Math.round(result.bytes / 1024)} KiB each), 1 a second: ${result.longTasks} long tasks, longest ${Math.round(result.longest)} ms\n`);
  expect(result.devices).toBeGreaterThanOrEqual(10_000);
  await page.locator('#f-text').fill('synthetic-42');
  await expect.poll(() => row('synthetic-42').locator('.c-battery_level').textContent(), { timeout: 3000 }).toBe(`${(42 + 8) % 100} %`);
  expect(result.longest).toBeLessThan(50);
  expect(problems).toEqual([]);
}, 60_000);

it('stays smooth with 10,000 devices each sending 1 message a second (longest main-thread task < 50 ms)', async () => {
  const prefix = 'devices';
  const ROUNDS = 8;
  const burst = (round: number) =>
    Promise.all(Array.from({ length: 10_000 }, (_, i) => client.publishAsync(`${prefix}/fleet-${i}/telemetry`, `{"battery_level":${(i + round) % 100},"rssi":-${50 + ((i + round) % 40)}}`, { qos: 0 })));
  const known = ((await (await fetch(`${base}/devices?limit=1`)).json()) as { total: number }).total;
  await page.goto(`${base}/`);
  await page.waitForSelector('#connection.up');
  const t0 = Date.now();
  await burst(0);
  await expect.poll(() => page.locator('[data-kpi="devices"] .kpi-value').textContent(), { timeout: 60_000, interval: 250 }).toBe((10_000 + known).toLocaleString('en-US'));
  process.stdout.write(`dashboard: 10,000 new devices shown after ${Date.now() - t0} ms\n`);
  // Measured from here: the fleet is known, and every device reports once a second for ROUNDS s.
  await page.evaluate(`(() => {
    window.longest = 0; window.longTasks = 0; window.maxFrameMs = 0;
    new PerformanceObserver((list) => { for (const e of list.getEntries()) { window.longTasks++; window.longest = Math.max(window.longest, e.duration); } }).observe({ type: 'longtask' });
    let last = performance.now();
    const tick = (now) => { window.maxFrameMs = Math.max(window.maxFrameMs, now - last); last = now; requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  })()`);
  for (let round = 1; round <= ROUNDS; round++) {
    const started = Date.now();
    await burst(round);
    process.stdout.write(`dashboard: round ${round} published in ${Date.now() - started} ms\n`);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
  }
  const longest = Number(await page.evaluate('window.longest'));
  const longTasks = Number(await page.evaluate('window.longTasks'));
  const maxFrameMs = Number(await page.evaluate('window.maxFrameMs'));
  const rows = await page.locator('.tbody .tr').count();
  process.stdout.write(`dashboard: 10,000 devices × 1 msg/s for ${ROUNDS} s: ${longTasks} long tasks, longest ${Math.round(longest)} ms; longest frame ${Math.round(maxFrameMs)} ms; ${rows} rows in the DOM\n`);
  expect(rows).toBeLessThan(100); // windowed: only the rows in view exist
  // The last round reached the rows (fleet-0 shows its latest battery).
  await page.locator('#f-text').fill('fleet-0');
  await expect.poll(() => row('fleet-0').locator('.c-battery_level').textContent(), { timeout: 30_000 }).toBe(`${ROUNDS} %`); // the hub may lag on a busy machine: that is not the page's cost
  expect(longest).toBeLessThan(50);
  await page.locator('#f-text').fill('fleet-9999');
  await expect.poll(() => page.locator('.tbody .tr:not([hidden])').count()).toBe(1);
  expect(problems).toEqual([]);
}, 240_000);
