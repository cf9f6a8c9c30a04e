import { Redis } from 'ioredis';
import { Faults } from '../../src/errors/boundary.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { createRedisPresence } from '../../src/presence/redis-presence.js';
import { percentile, type Figure } from '../report.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Presence at 100k devices on the real Redis: touches per second through the store (every touch
 * a real write: rounds are spaced past the coalescing slack), the offline lag of 100 devices that
 * expire among 100k that stay present, and Redis memory per device.
 */
export async function presenceScenario(redisUrl: string, devices = 100_000): Promise<Figure[]> {
  const prefix = `vigil-bench:${Date.now()}:`;
  const admin = new Redis(redisUrl);
  const lags: number[] = [];
  /** True deadlines (last touch + timeout); the store's own include its coalescing slack. */
  const deadlines = new Map<string, number>();
  const log = createLogger('silent');
  const store = createRedisPresence({ url: redisUrl, keyPrefix: prefix, sweepMs: 250, log, faults: new Faults(log, createMetrics()) });
  await store.start({
    onExpired: (id) => {
      const deadline = deadlines.get(id);
      if (deadline !== undefined) lags.push(Date.now() - deadline);
    },
  });
  const figures: Figure[] = [];
  try {
    const ids = Array.from({ length: devices }, (_, i) => `bench-${i}`);
    const memoryBefore = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    const rounds = 5;
    const started = performance.now();
    let last = 0;
    for (let r = 0; r < rounds; r++) {
      last = Date.now() + r * 1000; // each round moves deadlines a second on: no touch is coalesced away
      for (const id of ids) store.touch(id, last, 600_000);
      await sleep(0);
    }
    // Done when the last round is in Redis.
    for (;;) {
      const [seen] = await store.lastSeen([ids.at(-1)!]);
      if (seen === last) break;
      await sleep(5);
    }
    const seconds = (performance.now() - started) / 1000;
    figures.push({ scenario: 'presence', metric: 'touches written', value: (devices * rounds) / seconds, unit: 'per s', note: `${devices} devices x ${rounds} rounds, batched Lua` });
    const memoryAfter = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    figures.push({ scenario: 'presence', metric: 'Redis memory per device', value: (memoryAfter - memoryBefore) / devices, unit: 'bytes', note: 'key + deadline zset + last-seen hash' });
    figures.push({ scenario: 'presence', metric: 'MEMORY USAGE of one device key', value: Number(await admin.memory('USAGE', `${prefix}presence:bench-1`)), unit: 'bytes' });

    // 100 devices with a 2 s timeout among the 100k present ones.
    const now = Date.now();
    for (let i = 0; i < 100; i++) {
      deadlines.set(`short-${i}`, now + 2000);
      store.touch(`short-${i}`, now, 2000);
    }
    const until = Date.now() + 10_000;
    while (lags.length < 100 && Date.now() < until) await sleep(50);
    lags.sort((a, b) => a - b);
    figures.push({ scenario: 'presence', metric: 'expiry lag p50', value: percentile(lags, 50), unit: 'ms', note: `100 of ${devices} expire, vs the true deadline (sweep 250 ms, slack 500 ms)` });
    figures.push({ scenario: 'presence', metric: 'expiry lag p99', value: percentile(lags, 99), unit: 'ms', note: `${lags.length}/100 reported` });
  } finally {
    await store.stop();
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
      cursor = next;
      if (keys.length > 0) await admin.unlink(...keys);
    } while (cursor !== '0');
    await admin.quit();
  }
  return figures;
}
