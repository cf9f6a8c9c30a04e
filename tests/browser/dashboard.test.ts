import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startHubWithEnv, testHubEnv } from '../helpers/hub.js';

/** The dashboard in real headless Chromium (Debian's package), fed by real MQTT telemetry. */
const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
let hub: RunningHub;
let browser: Browser;
let page: Page;
let device: Awaited<ReturnType<typeof deviceClient>>;
const env = { ...testHubEnv('embedded'), OFFLINE_TIMEOUT_S: '4', PRESENCE_SWEEP_MS: '100' };

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  hub = await startHubWithEnv(env);
  device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => {
    throw e;
  });
  // Every Content-Security-Policy violation of the pages is recorded (and must never happen).
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => {
    (window.cspViolations ??= []).push(e.violatedDirective + ' ' + e.blockedURI);
  })`);
});

const cspViolations = async () => (await page.evaluate('window.cspViolations ?? []')) as string[];

afterAll(async () => {
  await browser?.close();
  await device?.client.endAsync();
  await hub?.stop();
});

it('shows a device come online with its score, an alert raised and acknowledged, and the device go offline', async () => {
  await page.goto(httpUrl(hub, '/'));
  await page.waitForSelector('#connection.up');
  await device.telemetry('browser-1', { battery_level: 80, rssi: -60, error_rate: 0, response_time_ms: 120 });
  const row = page.locator('.row[data-id="browser-1"]');
  await expect.poll(() => row.textContent(), { timeout: 5000 }).toContain('online');
  await expect.poll(async () => Number((await row.locator('.score').textContent()) ?? 'NaN'), { timeout: 5000 }).toBeGreaterThan(50);
  await page.screenshot({ path: `${ARTIFACTS}fleet.png` });

  await row.click();
  await expect.poll(() => page.locator('#device-status').textContent(), { timeout: 5000 }).toBe('online');
  await device.telemetry('browser-1', { battery_level: 10, rssi: -60 });
  const raised = page.locator('#device-alerts li[data-state="raised"]');
  await expect.poll(() => raised.count(), { timeout: 5000 }).toBe(1);
  expect(await raised.textContent()).toContain('low_battery');
  await raised.getByRole('button', { name: 'Acknowledge' }).click();
  await expect.poll(() => page.locator('#device-alerts li[data-state="acknowledged"]').count(), { timeout: 5000 }).toBe(1);
  await page.screenshot({ path: `${ARTIFACTS}device.png` });

  // Silent past its 4 s timeout: the page shows it offline without a reload.
  await expect.poll(() => page.locator('#device-status').textContent(), { timeout: 8000 }).toBe('offline');
  await page.goto(httpUrl(hub, '/#/alerts'));
  await expect.poll(() => page.locator('table[aria-label="Alert feed"] tbody tr').count(), { timeout: 5000 }).toBeGreaterThan(0);
  expect(await cspViolations()).toEqual([]);
});

it('serves the dashboard and the API page under a Content-Security-Policy they keep, without X-XSS-Protection', async () => {
  const response = await page.goto(httpUrl(hub, '/'));
  expect(response!.headers()['content-security-policy']).toContain("script-src 'self'");
  expect(response!.headers()['x-xss-protection']).toBeUndefined();
  await page.waitForSelector('#connection.up');
  await page.locator('.row').first().click();
  await page.waitForSelector('#device-status');
  expect(await cspViolations()).toEqual([]);
  // The policy is enforced: an inline script does not run.
  await page.evaluate(`(() => { const s = document.createElement('script'); s.textContent = 'window.injected = true'; document.body.append(s); })()`);
  await expect.poll(async () => (await cspViolations()).length).toBe(1);
  expect(await page.evaluate('window.injected')).toBeUndefined();

  const docs = await page.goto(httpUrl(hub, '/docs'));
  expect(docs!.headers()['content-security-policy']).toContain("default-src 'none'");
  await expect.poll(() => page.locator('#ops section').count(), { timeout: 5000 }).toBeGreaterThan(20);
  expect(await cspViolations()).toEqual([]);
});

it('stays responsive with a fleet of 10,000 devices reporting', async () => {
  await page.goto(httpUrl(hub, '/'));
  await page.waitForSelector('#connection.up');
  // Measure the longest gap between animation frames while the burst is applied.
  await page.evaluate(`(() => {
    window.maxFrameMs = 0;
    let last = performance.now();
    const tick = (now) => { window.maxFrameMs = Math.max(window.maxFrameMs, now - last); last = now; requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  })()`);
  const started = Date.now();
  await Promise.all(Array.from({ length: 10_000 }, (_, i) => device.client.publishAsync(`${hub.config.MQTT_TOPIC_PREFIX}/fleet-${i}/telemetry`, '{"battery_level":70}', { qos: 0 })));
  await expect.poll(() => page.locator('.card:has-text("Devices") b').textContent(), { timeout: 60_000, interval: 250 }).toBe(String(10_000 + 1));
  const appliedMs = Date.now() - started;
  const maxFrameMs = Number(await page.evaluate('window.maxFrameMs'));
  const rows = await page.locator('.row').count();
  process.stdout.write(`dashboard: 10,000 devices applied in ${appliedMs} ms; longest frame ${Math.round(maxFrameMs)} ms; ${rows} rows in the DOM\n`);
  expect(rows).toBeLessThan(100); // virtualised: only the rows in view exist
  await page.locator('#f-text').fill('fleet-9999');
  await expect.poll(() => page.locator('.row').count()).toBe(1);
  expect(await cspViolations()).toEqual([]);
});
