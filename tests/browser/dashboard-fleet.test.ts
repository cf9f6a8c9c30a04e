import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, testHubEnv } from '../helpers/hub.js';
import { eventually } from '../helpers/wait.js';
import { startDashboard, watchedPage } from './browser-page.js';

/** The fleet view's controls and panels in headless Chromium, on a small fleet made to tell them apart. */
let hub: RunningHub;
let browser: Browser;
let device: Awaited<ReturnType<typeof deviceClient>>;
let dashboard: Awaited<ReturnType<typeof startDashboard>> | undefined;

const put = (id: string, body: unknown) =>
  fetch(httpUrl(hub, `/devices/${id}`), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const activeAlerts = async () => ((await (await fetch(httpUrl(hub, '/alerts?state=active'))).json()) as { alerts: { device_id: string; severity: string }[] }).alerts;

beforeAll(async () => {
  // The fleet's counts sampled every 200 ms, so a page opened a second later has history to show.
  dashboard = await startDashboard({ ...testHubEnv('embedded'), FLEET_COUNTS_SAMPLE_MS: '200', PRESENCE_SWEEP_MS: '100' });
  ({ hub, device, browser } = dashboard);
  await device.telemetry('f-alpha', { battery_level: 90, rssi: -50, error_rate: 0, response_time_ms: 100 });
  await device.telemetry('f-bravo', { battery_level: 8, rssi: -95, error_rate: 0.3, response_time_ms: 1900 });
  await device.telemetry('f-cellar', { battery_level: 50, rssi: -70 });
  await device.telemetry('f-delta', { battery_level: 30, rssi: -80 });
  expect((await put('f-alpha', { type: 'pump', name: 'Alpha pump' })).status).toBe(200);
  expect((await put('f-bravo', { type: 'sensor' })).status).toBe(200);
  expect((await put('f-cellar', { type: 'sensor', name: 'Cellar', offline_timeout_s: 1 })).status).toBe(200);
  await eventually('f-bravo has an active alert', async () => (await activeAlerts()).some((a) => a.device_id === 'f-bravo'));
  await eventually('f-cellar is offline', async () => ((await (await fetch(httpUrl(hub, '/status/f-cellar'))).json()) as { status: string }).status === 'offline');
});

afterAll(async () => {
  await dashboard?.stop();
});

/** The ids of the rows drawn, in the table's order. */
const shownIds = (page: Page) =>
  page.evaluate(`[...document.querySelectorAll('.tbody .tr:not([hidden])')].sort((a, b) => a.dataset.index - b.dataset.index).map((r) => r.dataset.id)`) as Promise<string[]>;

it('a fresh load shows the hub\'s history of online/offline counts (more than one sample at once)', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const { page, problems } = await watchedPage(context);
  const loaded = Date.now();
  await page.goto(httpUrl(hub, '/'));
  const samples = async () => Number((await page.locator('section[aria-label="Online and offline"] .chart-box').getAttribute('data-samples')) ?? 0);
  // The page samples on its own every 10 s: more than one sample within 3 s can only come from the hub.
  await expect.poll(samples, { timeout: 3000 }).toBeGreaterThan(1);
  expect(Date.now() - loaded).toBeLessThan(10_000);
  expect(await page.locator('section[aria-label="Online and offline"] .panel-note').textContent()).toBe('last 24 h');
  expect(problems).toEqual([]);
  await context.close();
});

it('fleet controls: sort, status and type filters, search, the empty state, the panels, Tab to a row with visible focus', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const { page, problems } = await watchedPage(context);
  await page.goto(httpUrl(hub, '/'));
  await page.waitForSelector('#connection.up');
  await expect.poll(() => shownIds(page), { timeout: 5000 }).toEqual(['f-alpha', 'f-bravo', 'f-cellar', 'f-delta']);

  // Sort by a column header: ascending, then descending on a second click.
  const header = page.locator('.th.c-battery_level button');
  await header.click();
  expect(await shownIds(page)).toEqual(['f-bravo', 'f-delta', 'f-cellar', 'f-alpha']);
  expect(await page.locator('.th.c-battery_level').getAttribute('aria-sort')).toBe('ascending');
  await header.click();
  expect(await shownIds(page)).toEqual(['f-alpha', 'f-cellar', 'f-delta', 'f-bravo']);
  expect(await page.locator('#f-sort').inputValue()).toBe('battery_level:-1');
  await page.selectOption('#f-sort', 'id:1');
  expect(await shownIds(page)).toEqual(['f-alpha', 'f-bravo', 'f-cellar', 'f-delta']);

  // Filters: status, then type (the menu lists the types the fleet has), then both cleared.
  await page.selectOption('#f-status', 'offline');
  expect(await shownIds(page)).toEqual(['f-cellar']);
  expect(await page.locator('.shown').textContent()).toBe('Showing 1 of 4');
  await page.selectOption('#f-status', '');
  await expect.poll(() => page.locator('#f-type option').allTextContents(), { timeout: 6000 }).toEqual(['Any type', 'pump', 'sensor']);
  await page.selectOption('#f-type', 'sensor');
  expect(await shownIds(page)).toEqual(['f-bravo', 'f-cellar']);
  await page.selectOption('#f-type', '');

  // Search by id or by name; nothing matching: one row that says so.
  await page.fill('#f-text', 'cellar');
  expect(await shownIds(page)).toEqual(['f-cellar']);
  await page.fill('#f-text', 'alpha pump');
  expect(await shownIds(page)).toEqual(['f-alpha']);
  await page.fill('#f-text', 'no-device-like-this');
  expect(await shownIds(page)).toEqual([]);
  const empty = page.locator('.empty-row');
  expect(await empty.isVisible()).toBe(true);
  expect(await empty.textContent()).toBe('No devices match the search and filters');
  expect(await page.locator('.shown').textContent()).toBe('Showing 0 of 4');
  await page.fill('#f-text', '');
  expect(await empty.isVisible()).toBe(false);

  // The panels: worst devices (lowest score first), by device type, alerts by severity.
  await expect.poll(() => page.locator('ol.worst li a').first().textContent(), { timeout: 5000 }).toBe('f-bravo');
  const scores = await page.locator('ol.worst li .score-pill').allTextContents();
  expect(scores.map(Number)).toEqual([...scores.map(Number)].sort((a, b) => a - b));
  expect(await page.locator('ol.worst li a', { hasText: 'Alpha pump' }).textContent()).toBe('Alpha pump (f-alpha)');
  const byType = async () => Object.fromEntries(await page.locator('ul[aria-label="Devices by type"] li').evaluateAll((lis) => lis.map((li) => [li.querySelector('.bar-label')?.textContent, li.querySelector('.bar-value')?.textContent])));
  expect(await byType()).toEqual({ sensor: '2', pump: '1', untyped: '1' });
  const stored = await activeAlerts();
  const bySeverity: Record<string, number> = Object.fromEntries(await page.locator('ul[aria-label="Active alerts by severity"] li').evaluateAll((lis) => lis.map((li) => [li.querySelector('.bar-label')?.textContent, Number(li.querySelector('.bar-value')?.textContent)])));
  for (const [severity, n] of Object.entries(bySeverity)) expect({ severity, n }).toEqual({ severity, n: stored.filter((a) => a.severity === severity).length });
  expect(Object.values(bySeverity).reduce((a, b) => a + b, 0)).toBe(stored.length);

  // Keyboard: Tab from the top reaches a row, whose focus is visible.
  await page.evaluate('document.activeElement?.blur(); window.scrollTo(0, 0)');
  let focused: string | null = null;
  for (let i = 0; i < 40 && focused === null; i++) {
    await page.keyboard.press('Tab');
    focused = (await page.evaluate(`document.activeElement?.matches('.tbody .tr') ? document.activeElement.dataset.id : null`)) as string | null;
  }
  expect(focused).toBe('f-alpha');
  const outline = (await page.evaluate(`(() => { const s = getComputedStyle(document.activeElement); return { style: s.outlineStyle, width: parseFloat(s.outlineWidth) }; })()`)) as { style: string; width: number };
  expect(outline.style).not.toBe('none');
  expect(outline.width).toBeGreaterThanOrEqual(2);
  await page.keyboard.press('ArrowDown');
  expect(await page.evaluate('document.activeElement.dataset.id')).toBe('f-bravo');
  await page.keyboard.press('Enter');
  await expect.poll(() => page.locator('#device-status').textContent(), { timeout: 5000 }).toBe('online');
  expect(problems).toEqual([]);
  await context.close();
}, 60_000);

it('on a phone the alerts State menu shows its whole label', async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const { page, problems } = await watchedPage(context);
  await page.goto(httpUrl(hub, '/#/alerts'));
  await page.waitForSelector('tr[data-alert]');
  // The selected option's text, measured in the menu's font, fits the menu's box (less its padding and arrow).
  const fit = (await page.evaluate(`(() => {
    const s = document.getElementById('a-state');
    const style = getComputedStyle(s);
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = style.font;
    const text = ctx.measureText(s.options[s.selectedIndex].text).width;
    const room = s.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 20;
    return { text: Math.ceil(text), room: Math.floor(room) };
  })()`)) as { text: number; room: number };
  expect(fit.text).toBeLessThanOrEqual(fit.room);
  expect(await page.evaluate('document.documentElement.scrollWidth')).toBe(390);
  expect(problems).toEqual([]);
  await context.close();
});
