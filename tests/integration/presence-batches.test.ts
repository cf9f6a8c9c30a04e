import { Redis } from 'ioredis';
import { afterAll, expect, it, vi } from 'vitest';
import { Faults } from '../../src/errors/boundary.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { createRedisPresence } from '../../src/presence/redis-presence.js';
import { LAST_SEEN_BATCH } from '../../src/presence/redis-last-seen.js';
import { FLUSH_BATCH } from '../../src/presence/redis-touch-queue.js';
import { recorder } from '../contracts/presence.contract.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';

const log = createLogger('silent');
const faults = new Faults(log, createMetrics());
const admin = new Redis(SERVICES.redisUrl);
const keyPrefix = `vigil-test:${randomSuffix()}:`;
const FLEET = 100_000;
const ids = Array.from({ length: FLEET }, (_, i) => `batch-${i}`);

afterAll(async () => {
  vi.restoreAllMocks();
  for (let cursor = '0'; ; ) {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 10_000);
    if (keys.length > 0) await admin.unlink(...keys);
    if ((cursor = next) === '0') break;
  }
  await admin.quit();
});

interface Recorded {
  readonly sent: { name: string; args: number }[];
  /** Past this many commands none is sent or answered any more (a valve, see below). */
  valve: number;
}

/**
 * Every command the presence store's connections send, with its argument count (ioredis's single
 * entry point). Past `valve` commands they are left pending forever, so a regression to a retry loop
 * that never yields stops (and fails the test) instead of hanging it.
 */
function recordCommands(): Recorded {
  const recorded: Recorded = { sent: [], valve: Infinity };
  const original = Redis.prototype.sendCommand;
  vi.spyOn(Redis.prototype, 'sendCommand').mockImplementation(function (this: Redis, ...call: Parameters<Redis['sendCommand']>) {
    recorded.sent.push({ name: call[0].name, args: call[0].args.length });
    return recorded.sent.length > recorded.valve ? new Promise(() => undefined) : original.apply(this, call);
  });
  return recorded;
}

it('100,000 devices touched and read back: no Redis call carries more than a batch; a cut connection does not stall the loop', async () => {
  const proxy = await FaultProxy.start(Number(new URL(SERVICES.redisUrl).port || 6379));
  const store = createRedisPresence({ url: `redis://127.0.0.1:${proxy.port}/0`, keyPrefix, sweepMs: 100, log, faults });
  try {
    await store.start(recorder());
    const recorded = recordCommands();
    const { sent } = recorded;
    const at = Date.now();
    for (const id of ids) store.touch(id, at, 600_000);
    let seen: (number | null)[] = [];
    for (const until = Date.now() + 30_000; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
      seen = await store.lastSeen(ids);
      if (seen.every((v) => v === at)) break;
    }
    expect(seen.filter((v) => v === at).length).toBe(FLEET);
    const scripts = sent.filter((c) => c.name === 'evalsha' || c.name === 'eval');
    const reads = sent.filter((c) => c.name === 'mget');
    expect(scripts.length).toBeGreaterThanOrEqual(FLEET / FLUSH_BATCH);
    expect(reads.length).toBeGreaterThanOrEqual(FLEET / LAST_SEEN_BATCH);
    // eval/evalsha: script, number of keys, 5 keys, now, then 3 a device.
    expect(Math.max(...scripts.map((c) => c.args))).toBeLessThanOrEqual(2 + 5 + 1 + 3 * FLUSH_BATCH);
    expect(Math.max(...reads.map((c) => c.args))).toBeLessThanOrEqual(LAST_SEEN_BATCH);

    // Redis away with a whole fleet's touches pending: the event loop keeps running (timers fire),
    // and the store tries again at its flush interval rather than in a loop.
    proxy.cut();
    await new Promise((r) => setTimeout(r, 100));
    const before = sent.length;
    recorded.valve = before + 1000;
    const later = Date.now();
    for (const id of ids) store.touch(id, later, 900_000);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    await new Promise((r) => setTimeout(r, 500));
    clearInterval(ticker);
    expect(ticks).toBeGreaterThan(10);
    expect(sent.slice(before).filter((c) => c.name === 'evalsha' || c.name === 'eval').length).toBeLessThan(100); // ~one per 20 ms flush interval
    expect(store.health().ok).toBe(false);
  } finally {
    proxy.restore();
    await store.stop();
    await proxy.close();
  }
}, 60_000);
