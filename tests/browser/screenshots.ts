import { mkdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { connectAsync } from 'mqtt';
import { chromium, type Page } from 'playwright-core';
import { spawnHub } from '../helpers/hub-process.js';
import { seedFleet } from './seed-fleet.js';

/**
 * `npm run screenshots`: every view of the dashboard, light and dark, desktop and phone, as PNGs in
 * docs/images/ for docs/dashboard.md. Starts its own hub (embedded broker and database) and fleet.
 */
const OUT = new URL('../../docs/images/', import.meta.url).pathname;
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

const env = { PORT: String(await freePort()), MQTT_PORT: String(await freePort()), DATA_DIR: `/tmp/vigil-shots-${Date.now()}` };
const hub = await spawnHub(env);
const base = `http://127.0.0.1:${env.PORT}`;
const client = await connectAsync(`mqtt://127.0.0.1:${env.MQTT_PORT}`, { clientId: `shots-${Date.now()}` });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
const errors: string[] = [];
try {
  mkdirSync(OUT, { recursive: true });
  await seedFleet({ client, prefix: 'devices', httpBase: base });
  // The featured device keeps reporting while the pictures are taken: the charts move.
  let n = 0;
  const live = setInterval(() => {
    n++;
    void client.publishAsync('devices/pump-07/telemetry', JSON.stringify({ battery_level: 67, rssi: -60 - (n % 5), response_time_ms: 200 + (n % 7) * 20, error_rate: 0.01, metrics: { temperature: 22 + (n % 3) / 10, pressure: 2.2 } }));
  }, 1000);
  const views: [name: string, hash: string, ready: (p: Page) => Promise<unknown>][] = [
    ['fleet', '#/', async (p) => (await p.waitForSelector('.tbody .tr[data-id]'), await p.waitForTimeout(5500))], // two samples of the online chart
    ['alerts', '#/alerts', (p) => p.waitForSelector('#alerts tr[data-alert]')],
    ['device', '#/device/pump-07', (p) => p.waitForSelector('#device [data-chart][data-points]')],
  ];
  const shapes = [['desktop', { width: 1440, height: 1000 }, false], ['phone', { width: 390, height: 844 }, true]] as const;
  for (const scheme of ['light', 'dark'] as const) {
    for (const [shape, viewport, isMobile] of shapes) {
      const context = await browser.newContext({ viewport, isMobile, hasTouch: isMobile, deviceScaleFactor: isMobile ? 2 : 1, colorScheme: scheme });
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(`${scheme}/${shape}: ${e.message}`));
      page.on('console', (m) => m.type() === 'error' && errors.push(`${scheme}/${shape}: ${m.text()}`));
      for (const [name, hash, ready] of views) {
        await page.goto(`${base}/${hash}`);
        await page.waitForSelector('#connection.up');
        await ready(page);
        await page.waitForTimeout(2500); // panels refresh once a second; let two refreshes land
        const path = `${OUT}${name}-${shape}-${scheme}.png`;
        await page.screenshot({ path, fullPage: true });
        process.stdout.write(`${path}\n`);
      }
      await context.close();
    }
  }
  clearInterval(live);
} finally {
  if (errors.length > 0) process.stderr.write(`page errors:\n${errors.join('\n')}\n`);
  await browser.close();
  await client.endAsync();
  await hub.stop();
}
if (errors.length > 0) process.exitCode = 1;
