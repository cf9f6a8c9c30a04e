import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startHubWithEnv, testHubEnv } from '../helpers/hub.js';
import { launchChromium, watchedPage } from './browser-page.js';

/** The device view in headless Chromium: charts, timeline, score, forms, an unknown id. */
let hub: RunningHub;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let problems: string[];
let device: Awaited<ReturnType<typeof deviceClient>>;

beforeAll(async () => {
  hub = await startHubWithEnv({ ...testHubEnv('embedded'), OFFLINE_TIMEOUT_S: '8', PRESENCE_SWEEP_MS: '100' });
  device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  ({ page, problems } = await watchedPage(context));
});

afterAll(async () => {
  await browser?.close();
  await device?.client.endAsync();
  await hub?.stop();
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
