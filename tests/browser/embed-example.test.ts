import { readFileSync } from 'node:fs';
import type { Browser, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startHubWithEnv, testHubEnv } from '../helpers/hub.js';
import { launchChromium, watchedPage } from './browser-page.js';

/**
 * The embedding example of docs/websocket-protocol.md ("Browser client"), read from the markdown and
 * run verbatim in headless Chromium against a real hub, so the documented code cannot rot.
 */
const DOC = readFileSync(new URL('../../docs/websocket-protocol.md', import.meta.url), 'utf8');

function documentedExample(): string {
  const section = DOC.slice(DOC.indexOf('\n## Browser client'));
  const match = /```html\n([\s\S]*?)\n```/.exec(section);
  if (match === null) throw new Error('no ```html block in the "Browser client" section');
  return match[1]!;
}

let hub: RunningHub;
let browser: Browser;
let device: Awaited<ReturnType<typeof deviceClient>>;

interface StoredAlert { alert_id: string; state: string }
const alerts = async (query: string) => ((await (await fetch(httpUrl(hub, `/alerts?${query}`))).json()) as { alerts: StoredAlert[] }).alerts;

beforeAll(async () => {
  hub = await startHubWithEnv(testHubEnv('embedded'));
  device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await device?.client.endAsync();
  await hub?.stop();
});

it('the documented embedding example runs as written: fleet rows, an alert acknowledged by its last line, rows a full snapshot leaves out removed', async () => {
  const example = documentedExample();
  expect(example).toContain('await vigil.ackAlert(');
  for (const id of ['embed-1', 'embed-2', 'pump-7']) await device.telemetry(id, { battery_level: 70, rssi: -60 });
  await device.telemetry('embed-2', { battery_level: 8 }); // low_battery raised before the page opens
  await expect.poll(async () => (await alerts('state=raised&device_id=embed-2')).length, { timeout: 5000 }).toBe(1);

  // bypassCSP: the page's own inline helpers below; the hub serves the page's origin (a page Playwright
  // made up would be a public address, refused a WebSocket to 127.0.0.1 by Chromium's local network checks).
  const context = await browser.newContext({ bypassCSP: true });
  const { page, problems } = await watchedPage(context);
  // The page's own functions the example calls (render, askForKey), then the example as it is written.
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>embed</title></head><body>
<script>window.renders = []; window.render = (rows) => window.renders.push([...rows.keys()].sort()); window.askForKey = (d) => console.error('askForKey ' + JSON.stringify(d));</script>
${example}
</body></html>`;
  // The WebSocket through a proxy the test can cut, and hold while the fleet changes.
  let current: WebSocketRoute | null = null;
  let hold: Promise<void> = Promise.resolve();
  await page.routeWebSocket(/\/ws$/, async (ws) => {
    await hold;
    current = ws;
    ws.connectToServer();
  });

  await page.goto(httpUrl(hub, '/docs'));
  await page.waitForSelector('#ops section'); // its own script is done: the document is the example's
  await page.setContent(html);
  await expect.poll(() => page.evaluate('document.body.dataset.ws'), { timeout: 5000 }).toBe('open');
  const lastRender = () => page.evaluate('window.renders.at(-1) ?? []');
  await expect.poll(lastRender, { timeout: 5000 }).toEqual(['embed-1', 'embed-2', 'pump-7']);
  // The last line, `await vigil.ackAlert(...)`, ran at the top level before the socket was open.
  await expect.poll(async () => (await alerts('state=acknowledged&device_id=embed-2')).length, { timeout: 5000 }).toBe(1);

  // A device deleted while connected: the delta's `removed`.
  expect((await fetch(httpUrl(hub, '/devices/embed-1'), { method: 'DELETE' })).status).toBeLessThan(300);
  await expect.poll(lastRender, { timeout: 5000 }).toEqual(['embed-2', 'pump-7']);

  // A device deleted while the page was disconnected: only the full snapshot after the reconnect tells.
  let release = (): void => undefined;
  hold = new Promise<void>((resolve) => (release = resolve));
  await (current as WebSocketRoute | null)?.close({ code: 1001, reason: 'test cut' });
  await expect.poll(() => page.evaluate('document.body.dataset.ws'), { timeout: 5000 }).toBe('reconnecting');
  expect((await fetch(httpUrl(hub, '/devices/pump-7'), { method: 'DELETE' })).status).toBeLessThan(300);
  await device.telemetry('embed-3', { battery_level: 50 });
  release();
  await expect.poll(() => page.evaluate('document.body.dataset.ws'), { timeout: 10_000 }).toBe('open');
  await expect.poll(lastRender, { timeout: 5000 }).toEqual(['embed-2', 'embed-3']);
  expect(problems).toEqual([]);
  await context.close();
}, 60_000);
