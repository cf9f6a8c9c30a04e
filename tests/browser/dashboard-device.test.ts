import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, testHubEnv } from '../helpers/hub.js';
import { startDashboard, watchedPage } from './browser-page.js';

/** The device view in headless Chromium: charts, timeline, score, forms, an unknown id. */
let hub: RunningHub;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let problems: string[];
let device: Awaited<ReturnType<typeof deviceClient>>;
let dashboard: Awaited<ReturnType<typeof startDashboard>> | undefined;

beforeAll(async () => {
  dashboard = await startDashboard({ ...testHubEnv('embedded'), OFFLINE_TIMEOUT_S: '8', PRESENCE_SWEEP_MS: '100', METRIC_UNITS: 'flux=GW' });
  ({ hub, device, browser } = dashboard);
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  ({ page, problems } = await watchedPage(context));
});

afterAll(async () => {
  await dashboard?.stop();
});

interface DrawnThreshold { value: number; y: number; left: number; width: number }

it('a young device: the threshold line spans the whole plot, the timeline legend shows one Status value, the score says when it was computed', async () => {
  await device.telemetry('young-1', { battery_level: 70, rssi: -60 });
  await page.goto(httpUrl(hub, '/#/device/young-1'));
  const battery = page.locator('[data-chart="battery_level"]');
  await expect.poll(async () => Number(await battery.getAttribute('data-points')), { timeout: 5000 }).toBeGreaterThan(0); // the minute's average and the reading
  await expect.poll(async () => JSON.parse((await battery.getAttribute('data-thresholds')) ?? '[]') as DrawnThreshold[], { timeout: 5000 }).toHaveLength(1);
  const [line] = JSON.parse((await battery.getAttribute('data-thresholds'))!) as DrawnThreshold[];
  expect(line!.value).toBe(20);
  // The plot area (uPlot's overlay, the canvas less the axes): the line goes from its left edge to its right edge…
  const plot = (await page.evaluate(`(() => { const o = document.querySelector('[data-chart="battery_level"] .u-over'); return { left: o.offsetLeft, width: o.clientWidth }; })()`)) as { left: number; width: number };
  expect(Math.abs(line!.left - plot.left)).toBeLessThanOrEqual(1);
  expect(Math.abs(line!.width - plot.width)).toBeLessThanOrEqual(1);
  // …and is drawn there: the threshold colour near both ends of its row of pixels (one reading is one point).
  const ends = (await page.evaluate(`((l) => {
    const c = document.querySelector('[data-chart="battery_level"] canvas');
    const ctx = c.getContext('2d');
    const scale = c.width / c.clientWidth;
    const reddish = (x0) => {
      const data = ctx.getImageData(Math.round(x0 * scale), Math.round(l.y * scale) - 1, Math.round(16 * scale), 3).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] > data[i + 1] + 50 && data[i] > data[i + 2] + 50) n++;
      return n;
    };
    return [reddish(l.left + 1), reddish(l.left + l.width - 17)];
  })(${JSON.stringify(line)})`)) as number[];
  expect(ends[0]).toBeGreaterThan(0);
  expect(ends[1]).toBeGreaterThan(0);

  // The status timeline's legend: one Status entry with one value (online), not two series.
  const legend = page.locator('section[aria-label="Status, last 24 h"] .u-legend .u-series');
  await expect.poll(async () => (await legend.allTextContents()).map((t) => t.replace(/\s+/g, '')).slice(1), { timeout: 5000 }).toEqual(['Statusonline']);

  // The score with the time it was computed and its age.
  await expect.poll(() => page.locator('#device-score').textContent(), { timeout: 5000 }).not.toBe('—');
  const scoredAt = page.locator('.scored-at');
  await expect.poll(() => scoredAt.textContent(), { timeout: 5000 }).toMatch(/^scored at \d{1,2}:\d{2}:\d{2}\s?(AM|PM)? \((just now|\d+ s ago)\)$/);
  // Offline (8 s timeout): the age grows past the offline moment; the components are that old.
  await expect.poll(() => page.locator('#device-status').textContent(), { timeout: 10_000 }).toBe('offline');
  await expect.poll(async () => Number(/\((\d+) s ago\)/.exec((await scoredAt.textContent()) ?? '')?.[1] ?? 0), { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
  await expect.poll(async () => (await legend.allTextContents()).map((t) => t.replace(/\s+/g, '')).slice(1), { timeout: 5000 }).toEqual(['Statusoffline']);
  expect(problems).toEqual([]);
}, 60_000);

it('an unknown device: one "No such device" message with a link back to Fleet, and no request after the 404', async () => {
  const fresh = await watchedPage(context);
  const requests: string[] = [];
  fresh.page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  await fresh.page.goto(httpUrl(hub, '/'));
  await fresh.page.waitForSelector('#connection.up');
  const before = requests.length;
  const sockets: string[] = [];
  fresh.page.on('websocket', (ws) => ws.on('framesent', (f) => sockets.push(String(f.payload))));
  await fresh.page.evaluate('location.hash = "#/device/no-such-device"');
  await fresh.page.getByRole('heading', { name: 'No such device' }).waitFor({ timeout: 5000 });
  await fresh.page.waitForTimeout(1500); // anything else the view would ask for has been asked
  expect(requests.slice(before).filter((p) => p !== '/favicon.svg')).toEqual(['/devices/no-such-device']);
  expect(sockets.filter((s) => s.includes('no-such-device'))).toEqual([]);
  expect(await fresh.page.locator('#view [data-chart], #view form').count()).toBe(0);
  const back = fresh.page.getByRole('link', { name: /Back to Fleet/ });
  expect(await back.getAttribute('href')).toBe('#/');
  // The one 404 is the browser's own console line about the failed load.
  expect(fresh.problems.filter((p) => !p.includes('404'))).toEqual([]);
  expect(fresh.problems.length).toBeLessThanOrEqual(1);
  await back.click();
  await fresh.page.waitForSelector('.tbody .tr[data-id]');
  await fresh.page.close();
});

it('device forms: a command and its states, bad params refused in the page, settings saved (and "Saved." cleared on input), the ranges, the theme toggle', async () => {
  await device.telemetry('forms-1', { battery_level: 60, rssi: -65, metrics: { temperature: 21.5, flux: 3, mystery: 7 } });
  const sent: string[] = [];
  page.on('request', (r) => r.method() === 'POST' && sent.push(new URL(r.url()).pathname));
  await page.goto(httpUrl(hub, '/#/device/forms-1'));
  await page.waitForSelector('[data-chart="battery_level"][data-points]');
  // Sensor metrics with their units: built in (temperature), from METRIC_UNITS (flux), none known (mystery).
  const axes = async (field: string) => JSON.parse((await page.locator(`[data-chart="${field}"]`).getAttribute('data-axes')) ?? '[]') as string[];
  expect(await axes('temperature')).toEqual(['Local time', 'temperature (°C)']);
  expect(await axes('flux')).toEqual(['Local time', 'flux (GW)']);
  expect(await axes('mystery')).toEqual(['Local time', 'mystery']);

  // Params that are not a JSON object: said in the form, nothing sent.
  await page.fill('#cmd', 'reboot');
  await page.fill('#cmd-params', '[1, 2]');
  await page.getByRole('button', { name: 'Send command' }).click();
  expect(await page.locator('section[aria-label="Commands"] .form-message').textContent()).toBe('Params: params must be a JSON object');
  expect(sent.filter((p) => p.endsWith('/commands'))).toEqual([]);
  // A command the device never answers: queued or sent at once, then timed out (1 s) live in the table.
  await page.fill('#cmd-params', '{"delay_s": 5}');
  await page.fill('#cmd-timeout', '1');
  await page.getByRole('button', { name: 'Send command' }).click();
  await expect.poll(() => page.locator('section[aria-label="Commands"] .form-message').textContent(), { timeout: 5000 }).toMatch(/^reboot (queued|sent)$/);
  const command = page.locator('#device-commands tr[data-command]').first();
  expect(await command.textContent()).toContain('{"delay_s":5}');
  await expect.poll(() => command.getAttribute('data-state'), { timeout: 15_000 }).toMatch(/^(timed_out|expired)$/);
  expect(await page.locator('#cmd').inputValue()).toBe('');

  // Settings: saved, the title follows; a later edit clears "Saved."; a refused value says why.
  const message = page.locator('section[aria-label="Settings"] .form-message');
  await page.fill('#set-name', 'Boiler room');
  await page.fill('#set-type', 'thermostat');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect.poll(() => message.textContent(), { timeout: 5000 }).toBe('Saved.');
  expect(await page.locator('h1.view-title').textContent()).toBe('Boiler room');
  const stored = (await (await fetch(httpUrl(hub, '/devices/forms-1'))).json()) as { name: string; type: string };
  expect({ name: stored.name, type: stored.type }).toEqual({ name: 'Boiler room', type: 'thermostat' });
  await page.fill('#set-timeout', '0');
  expect(await message.textContent()).toBe('');
  await page.getByRole('button', { name: 'Save settings' }).click(); // min=1: the browser refuses it before the hub
  expect(await message.textContent()).toBe('');
  await page.fill('#set-timeout', '600');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect.poll(() => message.textContent(), { timeout: 5000 }).toBe('Saved.');
  expect(await page.locator('section[aria-label="Settings"] .muted.small').textContent()).toBe('In effect: 600 s');

  // The ranges: each pressed in turn, read from its own source.
  const status = page.locator('section[aria-label="Metrics"] > p[role="status"]');
  for (const [label, text] of [['15 min', 'Every reading of the last 15 min, then live.'], ['24 h', 'Averages per minute, then live readings.'], ['7 d', 'Averages per hour, then live readings.'], ['1 h', 'Averages per minute, then live readings.']] as const) {
    await page.getByRole('button', { name: label, exact: true }).click();
    await expect.poll(() => status.textContent(), { timeout: 5000 }).toBe(text);
    expect(await page.getByRole('button', { name: label, exact: true }).getAttribute('aria-pressed')).toBe('true');
    await expect.poll(async () => Number(await page.locator('[data-chart="battery_level"]').getAttribute('data-points')), { timeout: 5000 }).toBeGreaterThan(0);
  }

  // The theme toggle: the other theme, kept, and the charts redrawn in its colours.
  const theme = () => page.evaluate(`document.documentElement.dataset.theme || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')`);
  const before = await theme();
  const background = () => page.evaluate(`getComputedStyle(document.documentElement).getPropertyValue('--fg')`);
  const bgBefore = await background();
  await page.locator('#theme').click();
  expect(await theme()).toBe(before === 'dark' ? 'light' : 'dark');
  expect(await background()).not.toBe(bgBefore);
  expect(await page.evaluate(`localStorage.getItem('vigil-theme')`)).toBe(await theme());
  expect(await page.locator('#theme').getAttribute('aria-label')).toBe(`Switch to ${before} theme`);
  await page.waitForSelector('[data-chart="battery_level"] .uplot');
  await page.locator('#theme').click();
  expect(await theme()).toBe(before);
  expect(problems).toEqual([]);
}, 60_000);
