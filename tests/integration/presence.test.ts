import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Faults } from '../../src/errors/boundary.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { createMemoryPresence } from '../../src/presence/memory-presence.js';
import type { PresenceStore } from '../../src/presence/presence-store.js';
import { createRedisPresence, mergeFlags } from '../../src/presence/redis-presence.js';
import { LATE_EXPIRY_MS } from '../../src/presence/late-expiry.js';
import { recorder, runPresenceContract, waitFor } from '../contracts/presence.contract.js';
import { eventually, letTimePass } from '../helpers/wait.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';

const log = createLogger('silent');
const faults = new Faults(log, createMetrics());
const admin = new Redis(SERVICES.redisUrl);
const prefixes: string[] = [];
const redisStore = (keyPrefix = `vigil-test:${randomSuffix()}:`) => {
  prefixes.push(keyPrefix);
  return createRedisPresence({ url: SERVICES.redisUrl, keyPrefix, sweepMs: 100, log, faults });
};

afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await admin.quit();
});

runPresenceContract('memory', async () => createMemoryPresence({ sweepMs: 100, faults }));
runPresenceContract('redis', async () => redisStore());

describe('redis presence across hubs', () => {
  const stores: PresenceStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()));
  });
  const startHubs = async (count: number, prefix: string) =>
    Promise.all(
      Array.from({ length: count }, async () => {
        const store = redisStore(prefix);
        const listener = recorder();
        await store.start(listener);
        stores.push(store);
        return { store, listener };
      }),
    );

  it('three hubs on one Redis report each expiry exactly once, and the others hear of it', async () => {
    const hubs = await startHubs(3, `vigil-test:${randomSuffix()}:`);
    const start = Date.now();
    // Every hub touches every device, as when all of them receive the same telemetry.
    for (let i = 0; i < 300; i++) for (const { store } of hubs) store.touch(`x${i}`, start, 400 + (i % 5) * 100);
    const total = () => hubs.reduce((n, h) => n + h.listener.expiries.length, 0);
    await waitFor(() => total() >= 300, 5000);
    await letTimePass(500, 'an expiry reported twice (by two hubs) would come meanwhile');
    expect(total()).toBe(300);
    const ids = hubs.flatMap((h) => h.listener.expiries.map((e) => e.deviceId));
    expect(new Set(ids).size).toBe(300);
    // Each hub heard, as remote transitions, exactly the expiries the other hubs claimed.
    for (const [i, hub] of hubs.entries()) {
      const others = hubs.filter((_, j) => j !== i).reduce((n, h) => n + h.listener.expiries.length, 0);
      expect(hub.listener.remote.filter((c) => c.status === 'offline')).toHaveLength(others);
    }
  });

  it('grants a transition to one hub only when several claim it at once', async () => {
    const hubs = await startHubs(3, `vigil-test:${randomSuffix()}:`);
    const change = { deviceId: 'same', status: 'online' as const, previous: null, reason: 'telemetry' as const, lastSeen: 1, at: 1 };
    const results = await Promise.all(hubs.map((h) => h.store.claim(change)));
    expect(results.filter(Boolean)).toHaveLength(1);
    await waitFor(() => hubs.reduce((n, h) => n + h.listener.remote.length, 0) === 2);
  });

  it('reports an expiry found long after its deadline as reconcile', async () => {
    const hubs = await startHubs(2, `vigil-test:${randomSuffix()}:`);
    hubs[0]!.store.touch('old', Date.now() - 10_000, 1000);
    const claimed = () => hubs.flatMap((h) => h.listener.expiries);
    await waitFor(() => claimed().length > 0);
    await letTimePass(300, 'a second claim of the expiry would come meanwhile');
    expect(claimed()).toHaveLength(1);
    // The claimer sees a deadline far past (the hub reports it as reconcile), the other hears reason reconcile.
    expect(claimed()[0]!.at - claimed()[0]!.deadline).toBeGreaterThan(LATE_EXPIRY_MS);
    const heard = hubs.flatMap((h) => h.listener.remote);
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({ deviceId: 'old', status: 'offline', reason: 'reconcile' });
  });

  it('merges Ex into notify-keyspace-events, keeping what was set', async () => {
    const [, original] = (await admin.config('GET', 'notify-keyspace-events')) as [string, string];
    try {
      await admin.config('SET', 'notify-keyspace-events', 'Kg');
      await startHubs(1, `vigil-test:${randomSuffix()}:`);
      const [, now] = (await admin.config('GET', 'notify-keyspace-events')) as [string, string];
      for (const flag of ['K', 'g', 'E', 'x']) expect(now).toContain(flag);
    } finally {
      await admin.config('SET', 'notify-keyspace-events', original || 'Ex');
    }
    expect(mergeFlags('')).toBe('Ex');
    expect(mergeFlags('AKE')).toBe('AKE');
  });

  it('costs about 100 bytes of Redis memory per device key', async () => {
    const prefix = `vigil-test:${randomSuffix()}:`;
    const [hub] = await startHubs(1, prefix);
    hub!.store.touch('device-000001', Date.now(), 60_000);
    await eventually('the key written', async () => (await admin.exists(`${prefix}presence:device-000001`)) === 1);
    const bytes = await admin.memory('USAGE', `${prefix}presence:device-000001`);
    expect(bytes).toBeLessThanOrEqual(100);
  });
});
