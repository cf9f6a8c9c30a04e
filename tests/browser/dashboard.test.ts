import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, testHubEnv } from '../helpers/hub.js';
import { startDashboard, seriousViolations, watchedPage } from './browser-page.js';

/** The dashboard in real headless Chromium, fed by real MQTT telemetry through the embedded broker. */
const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
let hub: RunningHub;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let problems: string[];
let device: Awaited<ReturnType<typeof deviceClient>>;
let dashboard: Awaited<ReturnType<typeof startDashboard>> | undefined;
const env = { ...testHubEnv('embedded'), OFFLINE_TIMEOUT_S: '6', PRESENCE_SWEEP_MS: '100' };

interface StoredAlert { alert_id: string; device_id: string; anomaly_type: string; state: string }
const alerts = async (query: string) => ((await (await fetch(httpUrl(hub, `/alerts?${query}`))).json()) as { alerts: StoredAlert[] }).alerts;
const row = (id: string) => page.locator(`.tbody .tr[data-id="${id}"]`);

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dashboard = await startDashboard(env);
  ({ hub, device, browser } = dashboard);
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  ({ page, problems } = await watchedPage(context));
});

afterAll(async () => {
  await dashboard?.stop();
});

it('a fleet row follows each message: battery and last seen within 2 s, and Enter opens the device', async () => {
  await device.telemetry('live-1', { battery_level: 90, rssi: -60, error_rate: 0, response_time_ms: 120 });
  await page.goto(httpUrl(hub, '/'));
  await page.waitForSelector('#connection.up');
  await expect.poll(() => row('live-1').locator('.c-status').textContent(), { timeout: 5000 }).toContain('online');
  for (const battery of [81, 72, 63]) {
    // Let the row's age grow first, so "last seen" is seen to follow the message.
    await expect.poll(() => row('live-1').locator('.c-last_seen').textContent(), { timeout: 5000 }).toMatch(/[2-9] s ago/);
    const sent = Date.now();
    await device.telemetry('live-1', { battery_level: battery, rssi: -60 - battery / 10 });
    await expect.poll(() => row('live-1').locator('.c-battery_level').textContent(), { timeout: 2000, interval: 50 }).toBe(`${battery} %`);
    await expect.poll(() => row('live-1').locator('.c-last_seen').textContent(), { timeout: 2000, interval: 50 }).toMatch(/^(just now|1 s ago)$/);
    process.stdout.write(`dashboard: battery ${battery} % shown ${Date.now() - sent} ms after the message\n`);
  }
  expect(await row('live-1').locator('.c-rssi').textContent()).toMatch(/^-\d+ dBm$/);
  await page.screenshot({ path: `${ARTIFACTS}fleet.png` });

  await row('live-1').focus();
  await page.keyboard.press('Enter');
  await expect.poll(() => page.locator('#device-status').textContent(), { timeout: 5000 }).toBe('online');
  expect(problems).toEqual([]);
});

it('the device view: charts with labelled axes that update live, an alert acknowledged, the device going offline', { timeout: 60_000 }, async () => {
  await device.telemetry('chart-1', { battery_level: 70, rssi: -60, error_rate: 0, response_time_ms: 150 });
  await page.goto(httpUrl(hub, '/#/device/chart-1'));
  await page.waitForSelector('[data-chart="battery_level"][data-points]');
  // uPlot draws axes on a canvas: the labels it draws (its axes' options) are mirrored in data-axes and the aria-label.
  const axes = async (field: string) => JSON.parse((await page.locator(`[data-chart="${field}"]`).getAttribute('data-axes')) ?? '[]') as string[];
  expect(await axes('battery_level')).toEqual(['Local time', 'Battery (%)']);
  expect(await axes('rssi')).toEqual(['Local time', 'RSSI (dBm)']);
  expect(await axes('response_time_ms')).toEqual(['Local time', 'Response time (ms)']);
  expect(await page.locator('[data-chart="battery_level"] .uplot').getAttribute('aria-label')).toMatch(/^Battery \(%\) against Local time, \d+ points?$/);
  const points = async () => Number(await page.locator('[data-chart="battery_level"]').getAttribute('data-points'));
  await expect.poll(points, { timeout: 5000 }).toBeGreaterThan(0);
  const before = await points();
  await device.telemetry('chart-1', { battery_level: 10, rssi: -70 });
  await expect.poll(points, { timeout: 3000 }).toBe(before + 1);
  expect(await page.locator('#device-battery').textContent()).toBe('10 %');

  const raised = page.locator('#device-alerts tr[data-state="raised"]');
  await expect.poll(() => raised.count(), { timeout: 5000 }).toBe(1);
  expect(await raised.textContent()).toContain('low_battery');
  expect(await raised.textContent()).toContain('10 % < 20 %');
  await raised.getByRole('button', { name: 'Acknowledge' }).click();
  await expect.poll(() => page.locator('#device-alerts tr[data-state="acknowledged"]').count(), { timeout: 5000 }).toBe(1);
  await page.screenshot({ path: `${ARTIFACTS}device.png`, fullPage: true });

  // Silent past its 6 s timeout: the page shows it offline without a reload, and the timeline lists the span.
  await expect.poll(() => page.locator('#device-status').textContent(), { timeout: 12_000 }).toBe('offline');
  await expect.poll(() => page.locator('.spans li').first().textContent(), { timeout: 3000 }).toContain('offline');
  expect(problems).toEqual([]);
});

it('a fresh load of the alerts view lists an alert raised before the page opened; acknowledging it shows in GET /alerts', async () => {
  await device.telemetry('alert-1', { battery_level: 8 });
  await expect.poll(async () => (await alerts('state=raised&device_id=alert-1')).length, { timeout: 5000 }).toBe(1);
  const [alert] = await alerts('state=raised&device_id=alert-1');
  const fresh = await context.newPage();
  const freshProblems: string[] = [];
  fresh.on('pageerror', (e) => freshProblems.push(e.message));
  fresh.on('console', (m) => m.type() === 'error' && freshProblems.push(m.text()));
  await fresh.goto(httpUrl(hub, '/#/alerts'));
  const line = fresh.locator(`table[aria-label="Alert feed"] tr[data-alert="${alert!.alert_id}"]`);
  await line.waitFor({ timeout: 5000 });
  expect(await line.textContent()).toContain('8 % < 20 %');
  await line.getByRole('button', { name: 'Acknowledge' }).click();
  await expect.poll(async () => (await alerts('state=acknowledged&device_id=alert-1')).map((a) => a.alert_id), { timeout: 5000 }).toEqual([alert!.alert_id]);
  await expect.poll(() => line.getAttribute('data-state')).toBe('acknowledged');
  // Cleared alerts' history: the state filter reads them from the hub.
  await device.telemetry('alert-1', { battery_level: 60 });
  await expect.poll(async () => (await alerts('state=cleared&device_id=alert-1')).length, { timeout: 5000 }).toBe(1);
  await fresh.selectOption('#a-state', 'cleared');
  await expect.poll(() => fresh.locator(`tr[data-alert="${alert!.alert_id}"]`).getAttribute('data-state'), { timeout: 5000 }).toBe('cleared');
  await fresh.close();
  expect(freshProblems).toEqual([]);
});

it('no view is wider than a 390 px phone, and axe finds no serious or critical issue in either theme', async () => {
  // A device with a long id, a name and an active alert, so every view has rows to lay out.
  await fetch(httpUrl(hub, '/devices/phone-check-device-with-a-long-identifier'), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Cold store, north wall', type: 'sensor' }) });
  await device.telemetry('phone-check-device-with-a-long-identifier', { battery_level: 9, rssi: -88, error_rate: 0.02, response_time_ms: 300, metrics: { temperature: 4.5 } });
  await expect.poll(async () => (await alerts('state=raised&device_id=phone-check-device-with-a-long-identifier')).length, { timeout: 5000 }).toBe(1);
  for (const colorScheme of ['light', 'dark'] as const) {
    for (const [viewport, isMobile] of [[{ width: 390, height: 844 }, true], [{ width: 1280, height: 900 }, false]] as const) {
      // bypassCSP: axe is injected as an inline script, which the page's policy (rightly) refuses.
      const ctx = await browser.newContext({ viewport, isMobile, hasTouch: isMobile, colorScheme, bypassCSP: true });
      const watched = await watchedPage(ctx);
      for (const [hash, ready] of [['#/', '.tbody .tr[data-id]'], ['#/alerts', 'tr[data-alert]'], ['#/device/phone-check-device-with-a-long-identifier', '[data-chart][data-points]']] as const) {
        await watched.page.goto(httpUrl(hub, `/${hash}`));
        await watched.page.waitForSelector(ready, { timeout: 10_000 });
        await watched.page.waitForTimeout(1200); // the once-a-second panel refresh has drawn
        if (isMobile) expect({ hash, colorScheme, width: await watched.page.evaluate('document.documentElement.scrollWidth') }).toEqual({ hash, colorScheme, width: 390 });
        expect({ hash, colorScheme, isMobile, violations: await seriousViolations(watched.page) }).toEqual({ hash, colorScheme, isMobile, violations: [] });
      }
      expect(watched.problems).toEqual([]);
      await ctx.close();
    }
  }
}, 240_000);

it('serves the dashboard and its libraries under a Content-Security-Policy they keep', async () => {
  await device.telemetry('csp-1', { battery_level: 50 });
  const response = await page.goto(httpUrl(hub, '/'));
  expect(response!.headers()['content-security-policy']).toContain("script-src 'self'");
  expect(response!.headers()['x-xss-protection']).toBeUndefined();
  for (const path of ['/vendor/uplot.min.js', '/vendor/uplot.min.css', '/favicon.svg', '/fleet-view.js']) expect((await fetch(httpUrl(hub, path))).status).toBe(200);
  await page.waitForSelector('#connection.up');
  await page.locator('.tbody .tr').first().click();
  await page.waitForSelector('#device-status');
  // The policy is enforced: an inline script does not run (and its violation is the one console error).
  await page.evaluate(`(() => { const s = document.createElement('script'); s.textContent = 'window.injected = true'; document.body.append(s); })()`);
  await expect.poll(() => problems.filter((p) => p.includes('csp:')).length).toBe(1);
  expect(await page.evaluate('window.injected')).toBeUndefined();
  problems.length = 0;
  const docs = await page.goto(httpUrl(hub, '/docs'));
  expect(docs!.headers()['content-security-policy']).toContain("default-src 'none'");
  await expect.poll(() => page.locator('#ops section').count(), { timeout: 5000 }).toBeGreaterThan(20);
  expect(problems).toEqual([]);
});
