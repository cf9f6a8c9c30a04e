import { createServer, type AddressInfo } from 'node:net';
import { connectAsync } from 'mqtt';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, expect, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

let browser: Browser | undefined;
let hub: HubProcess | undefined;
afterAll(async () => {
  await browser?.close();
  await hub?.stop();
});

it('the dashboard reconnects with backoff and resumes after the hub restarts, without a reload', async () => {
  const env = { PORT: String(await freePort()), MQTT_PORT: String(await freePort()), DATA_DIR: `/tmp/vigil-browser-${Date.now()}` };
  hub = await spawnHub(env);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const sent: string[] = [];
  page.on('websocket', (socket) => socket.on('framesent', (frame) => sent.push(String(frame.payload))));
  await page.goto(`http://127.0.0.1:${env.PORT}/`);
  await page.waitForSelector('#connection.up');
  const before = await connectAsync(`mqtt://127.0.0.1:${env.MQTT_PORT}`, { clientId: `dev-before-${Date.now()}` });
  await before.publishAsync('devices/before-restart/telemetry', JSON.stringify({ battery_level: 70 }), { qos: 1 });
  await before.endAsync();
  await page.locator('.tbody .tr[data-id="before-restart"]').click();
  await expect.poll(() => page.locator('#device-status').textContent(), { timeout: 5000 }).toBe('online');

  await hub.stop('SIGTERM'); // clients are closed with 1001
  await page.waitForSelector('#connection.down', { timeout: 10_000 });
  hub = await spawnHub(env);
  await page.waitForSelector('#connection.up', { timeout: 30_000 });

  // The open device view resumes with its epoch and last seq (a restarted hub answers with a fresh snapshot).
  await expect.poll(() => sent.map((s) => JSON.parse(s) as { type: string; since_seq?: number; epoch?: string }).some((m) => m.type === 'subscribe_device' && typeof m.since_seq === 'number' && typeof m.epoch === 'string')).toBe(true);
  await expect.poll(() => page.locator('#device-status').textContent(), { timeout: 5000 }).toBe('online');

  await page.evaluate('location.hash = "#/"');

  // Live again: a device heard now appears without a reload.
  const device = await connectAsync(`mqtt://127.0.0.1:${env.MQTT_PORT}`, { clientId: `dev-${Date.now()}` });
  await device.publishAsync('devices/after-restart/telemetry', JSON.stringify({ battery_level: 90 }), { qos: 1 });
  await device.endAsync();
  await expect.poll(() => page.locator('.tbody .tr[data-id="after-restart"]').textContent(), { timeout: 10_000 }).toContain('online');
}, 60_000);

it('asks for an API key when the hub requires one, and keeps it for the session only', async () => {
  const env = { PORT: String(await freePort()), MQTT_PORT: String(await freePort()), DATA_DIR: `/tmp/vigil-browser-keys-${Date.now()}`, WS_TOKEN_TTL_S: '3' };
  const keyed = await spawnHub(env);
  try {
    const base = `http://127.0.0.1:${env.PORT}`;
    const createKey = async (name: string, scopes: string[], admin?: string) => {
      const created = await fetch(`${base}/admin/keys`, { method: 'POST', headers: { 'content-type': 'application/json', ...(admin ? { 'x-api-key': admin } : {}) }, body: JSON.stringify({ name, scopes }) });
      expect(created.status).toBe(201);
      return (await created.json()) as { id: string; key: string };
    };
    const admin = (await createKey('admin', ['admin', 'read'])).key; // the first key: needs none
    const { id, key } = await createKey('dashboard', ['read', 'command'], admin);
    browser ??= await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    const sockets: string[] = [];
    page.on('websocket', (socket) => {
      sockets.push('open');
      socket.on('close', () => sockets.push('close'));
    });
    await page.goto(`http://127.0.0.1:${env.PORT}/`);
    await page.waitForSelector('#login:not([hidden])');
    await page.getByLabel('API key').fill('vgl_wrong_key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#login-error').textContent()).toContain('API key');
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('#connection.up', { timeout: 10_000 });
    expect(await page.evaluate('sessionStorage.getItem("vigil-key")')).toBe(key);
    expect(await page.evaluate('localStorage.length')).toBe(0);
    // Its ws-token lasts 3 s: the page renews it on the open session, which outlives several tokens.
    const opened = sockets.length;
    await new Promise((r) => setTimeout(r, 7000));
    expect(sockets.slice(opened)).toEqual([]);
    expect(await page.locator('#connection.up').count()).toBe(1);

    // Revoked: the hub ends the session (4410); the page stops for good, asks for a key, and a new key connects again.
    expect((await fetch(`${base}/admin/keys/${id}`, { method: 'DELETE', headers: { 'x-api-key': admin } })).status).toBe(200);
    await page.waitForSelector('#login:not([hidden])', { timeout: 10_000 });
    await expect.poll(() => page.locator('#login-error').textContent()).toBe('The API key was revoked.');
    await expect.poll(() => sockets.at(-1)).toBe('close');
    const stopped = sockets.length;
    await new Promise((r) => setTimeout(r, 3000)); // past the first retries of a backoff (1 s, 2 s)
    expect(sockets.slice(stopped)).toEqual([]);
    expect(await page.locator('#connection.down').textContent()).toContain('signed out');
    const fresh = await createKey('dashboard-2', ['read'], admin);
    await page.getByLabel('API key').fill(fresh.key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('#connection.up', { timeout: 10_000 });
    expect(sockets.slice(stopped)).toEqual(['open']);
    await context.close();
  } finally {
    await keyed.stop();
  }
}, 60_000);
