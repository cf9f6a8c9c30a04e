import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { FleetHistory } from '../../src/hub/fleet-history.js';
import { deviceClient, httpUrl, startHubWithEnv, testHubEnv } from '../helpers/hub.js';

/** GET /fleet/history on a real hub: the fleet's counts sampled every FLEET_COUNTS_SAMPLE_MS. */
let hub: RunningHub;
let device: Awaited<ReturnType<typeof deviceClient>>;

interface History { interval_s: number; samples: { time_s: number[]; online: number[]; offline: number[]; unknown: number[] } }
const history = async (query = '') => {
  const r = await fetch(httpUrl(hub, `/fleet/history${query}`));
  expect(r.status).toBe(200);
  return (await r.json()) as History;
};

beforeAll(async () => {
  hub = await startHubWithEnv({ ...testHubEnv('embedded'), FLEET_COUNTS_SAMPLE_MS: '100', OFFLINE_TIMEOUT_S: '2', PRESENCE_SWEEP_MS: '100' });
  device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
});

afterAll(async () => {
  await device?.client.endAsync();
  await hub?.stop();
});

it('samples online, offline and unknown counts over time; since keeps the later samples', async () => {
  const first = await history();
  expect(first.interval_s).toBe(0.1);
  expect(first.samples.time_s.length).toBeGreaterThanOrEqual(1); // sampled at start
  expect(first.samples.online.at(-1)).toBe(0);
  for (const id of ['h-1', 'h-2', 'h-3']) await device.telemetry(id, { battery_level: 50 });
  await expect.poll(async () => (await history()).samples.online.at(-1), { timeout: 5000 }).toBe(3);
  // Silent past the 2 s timeout: offline in later samples, with the earlier online ones kept.
  await expect.poll(async () => (await history()).samples.offline.at(-1), { timeout: 10_000 }).toBe(3);
  const all = await history();
  const { time_s: times, online, offline, unknown } = all.samples;
  expect(new Set([times.length, online.length, offline.length, unknown.length]).size).toBe(1);
  expect(online).toContain(3);
  expect(unknown.every((n) => n === 0)).toBe(true);
  for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThan(times[i - 1]!);
  const cut = times[Math.floor(times.length / 2)]!;
  const later = await history(`?since=${encodeURIComponent(new Date(cut * 1000).toISOString())}`);
  expect(later.samples.time_s[0]).toBeGreaterThanOrEqual(cut);
  expect(later.samples.time_s.length).toBeLessThan(times.length);
  expect((await fetch(httpUrl(hub, '/fleet/history?since=yesterday'))).status).toBe(422);
  const openapi = (await (await fetch(httpUrl(hub, '/openapi.json'))).json()) as { paths: Record<string, unknown> };
  expect(Object.keys(openapi.paths)).toContain('/fleet/history');
});

it('is bounded: a full ring keeps the newest samples, oldest first', () => {
  let n = 0;
  let now = 0;
  const ring = new FleetHistory(() => ({ online: n, offline: 0, unknown: 0 }), 10_000, 5, () => now);
  for (n = 1; n <= 12; n++) {
    now = n * 10_000;
    ring.sample();
  }
  expect(ring.columns()).toEqual({ time_s: [80, 90, 100, 110, 120], online: [8, 9, 10, 11, 12], offline: [0, 0, 0, 0, 0], unknown: [0, 0, 0, 0, 0] });
  expect(ring.columns(100_000).online).toEqual([10, 11, 12]);
});
