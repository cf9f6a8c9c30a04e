import { describe, expect, it } from 'vitest';
import { LAST_SEEN_BATCH, LAST_SEEN_IN_FLIGHT, lastSeenInChunks } from '../../src/presence/redis-last-seen.js';
import { CLAIM_CALL_BATCH, ClaimQueue } from '../../src/presence/redis-claim-queue.js';
import { FLUSH_BATCH, TouchQueue, type SendTouches } from '../../src/presence/redis-touch-queue.js';

const FLEET = 100_000;
const ids = Array.from({ length: FLEET }, (_, i) => `d${i}`);
/** Lets every promise callback queued so far (and those they queue) run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('Redis presence calls never grow with the fleet', () => {
  it('touches of 100,000 devices go out in calls of at most FLUSH_BATCH devices, one at a time, each device once', async () => {
    const calls: (string | number)[][] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const send: SendTouches = async (args) => {
      calls.push(args);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await Promise.resolve();
      inFlight--;
    };
    const queue = new TouchQueue(send, () => undefined, () => undefined, () => undefined, () => 1000);
    for (const id of ids) queue.touch(id, 1000, 60_000);
    while (queue.pendingDevices >= FLUSH_BATCH) await settle();
    await queue.flush(); // the rest, as the flush interval would send it

    expect(calls.length).toBe(Math.ceil(FLEET / FLUSH_BATCH));
    for (const args of calls) expect(args.length).toBeLessThanOrEqual(1 + 3 * FLUSH_BATCH);
    expect(maxInFlight).toBe(1);
    const sent = calls.flatMap((args) => args.filter((_, i) => i % 3 === 1));
    expect(sent.length).toBe(FLEET);
    expect(new Set(sent).size).toBe(FLEET);
  });

  it('a failed call is not retried at once: no endless build-and-reject loop while Redis is away', async () => {
    let calls = 0;
    let failures = 0;
    let away = true;
    // ioredis without an offline queue rejects before any I/O while disconnected. The valve ends a
    // regression (a retry chained on failure) after 50 calls instead of hanging the test.
    const send: SendTouches = () => (++calls > 50 || !away ? Promise.resolve() : Promise.reject(new Error("Stream isn't writeable")));
    const queue = new TouchQueue(send, () => undefined, () => failures++, () => undefined, () => 1000);
    for (const id of ids) queue.touch(id, 1000, 60_000);
    await settle();
    await settle();

    expect(calls).toBe(1);
    expect(failures).toBe(1);
    expect(queue.pendingDevices).toBe(FLEET); // kept for the next flush
    for (let i = 0; i < 1000; i++) queue.touch(`late${i}`, 2000, 60_000); // touches start no flush meanwhile
    await settle();
    expect(calls).toBe(1);

    away = false;
    await queue.flush(); // the flush interval's next attempt, Redis back: it drains the rest
    while (queue.pendingDevices >= FLUSH_BATCH) await settle();
    expect(calls).toBe(1 + Math.floor((FLEET + 1000) / FLUSH_BATCH)); // the last partial batch waits for the interval
  });

  it('the deadline written carries a slack of min(the sweep interval, timeout / 4): coalesced, and never more late than that', async () => {
    const calls: (string | number)[][] = [];
    const send: SendTouches = async (args) => void calls.push(args);
    const sweepMs = 250;
    const queue = new TouchQueue(send, () => undefined, () => undefined, () => undefined, () => 1000, sweepMs);
    queue.touch('a', 1000, 20_000); // written: 21,000 + 250
    queue.touch('b', 1000, 400); // a short timeout: slack 100
    await queue.flush();
    expect(calls.at(-1)!.slice(1)).toEqual(['a', 1000, 21_250, 'b', 1000, 1500]);

    queue.touch('a', 1200, 20_000); // true deadline 21,200: within the written one, no write
    expect(queue.pendingDevices).toBe(0);
    queue.touch('a', 1251, 20_000); // 21,251: past it, written again
    await queue.flush();
    expect(calls.at(-1)!.slice(1)).toEqual(['a', 1251, 21_501]);
  });

  it('last-seen of 100,000 devices is read in MGETs of at most LAST_SEEN_BATCH keys, a few in flight, in order', async () => {
    const sizes: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const result = await lastSeenInChunks(ids, 'p:', async (keys) => {
      sizes.push(keys.length);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await settle();
      inFlight--;
      return keys.map((k) => (Number(k.slice(3)) % 2 === 0 ? String(Number(k.slice(3)) * 10) : null));
    });

    expect(sizes.length).toBe(FLEET / LAST_SEEN_BATCH);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(LAST_SEEN_BATCH);
    expect(maxInFlight).toBe(LAST_SEEN_IN_FLIGHT);
    expect(result.length).toBe(FLEET);
    expect(result[0]).toBe(0);
    expect(result[1]).toBeNull();
    expect(result[FLEET - 2]).toBe((FLEET - 2) * 10);
  });

  it('last-seen of no devices makes no call', async () => {
    let calls = 0;
    expect(await lastSeenInChunks([], 'p:', async () => (calls++, []))).toEqual([]);
    expect(calls).toBe(0);
  });
});

describe('Redis presence claims go in one call per event-loop turn (#21)', () => {
  const change = (i: number, status: 'online' | 'offline' = 'online') => ({ deviceId: `d${i}`, status, previous: null, reason: 'telemetry' as const, lastSeen: i % 2 === 0 ? 1000 + i : null, at: 2000 + i });

  it('2,500 changes made in one turn go out in three calls of at most CLAIM_CALL_BATCH, in order, and each caller hears its own flag', async () => {
    const calls: (string | number)[][] = [];
    const queue = new ClaimQueue(async (args) => {
      calls.push(args);
      return Array.from({ length: args.length / 5 }, (_, i) => (String(args[i * 5]).endsWith('7') ? 0 : 1));
    });
    const results = Array.from({ length: 2500 }, (_, i) => queue.claim(change(i)));
    expect(calls.length).toBe(2); // two full batches at once; the rest waits for the end of the turn
    const won = await Promise.all(results);
    expect(calls.map((c) => c.length / 5)).toEqual([CLAIM_CALL_BATCH, CLAIM_CALL_BATCH, 500]);
    expect(calls.flat().filter((_, i) => i % 5 === 0)).toEqual(Array.from({ length: 2500 }, (_, i) => `d${i}`));
    expect(calls[0]!.slice(0, 10)).toEqual(['d0', 'online', 'telemetry', 2000, '1000', 'd1', 'online', 'telemetry', 2001, '']);
    expect(won.filter((w) => !w).length).toBe(250);
    expect(won[7]).toBe(false);
    expect(won[8]).toBe(true);
  });

  it('a failed call rejects each of its changes and none of the next call', async () => {
    let n = 0;
    const queue = new ClaimQueue(async (args) => {
      if (n++ === 0) throw new Error('Connection is closed.');
      return args.filter((_, i) => i % 5 === 0).map(() => 1);
    });
    const first = [queue.claim(change(1)), queue.claim(change(2, 'offline'))];
    await expect(first[0]).rejects.toThrow('Connection is closed.');
    await expect(first[1]).rejects.toThrow('Connection is closed.');
    await expect(queue.claim(change(3))).resolves.toBe(true);
  });
});
