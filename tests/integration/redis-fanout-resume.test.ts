import { afterAll, expect, it } from 'vitest';
import { RedisBus } from '../../src/cluster/redis-bus.js';
import { Faults } from '../../src/errors/boundary.js';
import { seqOf } from '../../src/fanout/fanout.js';
import { createRedisFanout } from '../../src/fanout/redis-fanout.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';

/*
 * Resuming with since_seq, on the real Redis. On the instance that numbers the device: the owner
 * writes a frame to Redis (seq, history) at the end of the event-loop turn and hands it to its own
 * clients once Redis answered, so no client holds a frame Redis lacks (an instance killed between
 * the two left one that could not resume elsewhere); a recovery includes frames not written yet. On another instance: the history is read
 * on the command connection and the live frames come on the subscriber connection, so a recovery
 * must not be answered before the frames it includes have arrived live (the client holds live
 * frames until then and drops those the recovery had; a duplicate otherwise).
 */
const HISTORY = { windowMs: 120_000, maxBytesPerDevice: 65_536, ttlMs: 60_000, fleetWindowMs: 120_000, fleetMaxBytes: 1 << 20 };
const log = createLogger('error', { write: () => undefined });
const buses: RedisBus[] = [];

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close()));
});

it('delivers to its own clients only frames Redis has stored, and recovers those it has not written yet', async () => {
  const metrics = createMetrics();
  const faults = new Faults(log, metrics);
  const bus = new RedisBus(SERVICES.redisUrl, log, faults);
  buses.push(bus);
  await bus.connect();
  const prefix = `vigil-test:${randomSuffix()}:`;
  const fanout = await createRedisFanout({ bus, keyPrefix: prefix, instanceId: 'owner', ...HISTORY, log, metrics, faults });
  // What Redis holds for the device at the moment each frame reaches a local client: an instance
  // killed right then must leave its clients nothing the others cannot resume after (#22, the
  // kill test's recovered:false). A read sent from the delivery callback is answered after every
  // write sent before it.
  const storedAtDelivery: Promise<{ delivered: number; stored: number }>[] = [];
  const delivered: string[] = [];
  await fanout.start({
    toDevice: (_device, frame) => {
      delivered.push(frame);
      storedAtDelivery.push(bus.commands.hget(`${prefix}fanout:seq`, 'd1').then((s) => ({ delivered: seqOf(frame), stored: Number(s) })));
    },
    toAll: () => undefined,
  });
  await fanout.follow('d1');

  const frame = (seq: number) => JSON.stringify({ type: 'device_update', device_id: 'd1', seq });
  for (let seq = 1; seq <= 50; seq++) {
    fanout.toDevice('d1', seq, frame(seq), 'u');
    if (seq % 7 === 0) await new Promise((r) => setImmediate(r));
  }
  expect(delivered.length).toBeLessThan(50); // not handed out before Redis answered
  // A client that saw 1 resumes now: it gets everything after, including frames not written yet.
  const recovery = await fanout.recover('d1', 1, 50);
  expect(recovery).toEqual({ recovered: true, seq: 50, frames: Array.from({ length: 49 }, (_, i) => frame(i + 2)) });
  await fanout.settled();
  expect(delivered).toEqual(Array.from({ length: 50 }, (_, i) => frame(i + 1)));
  for (const { delivered: seq, stored } of await Promise.all(storedAtDelivery)) expect(stored, `frame ${seq}`).toBeGreaterThanOrEqual(seq);
  await fanout.stop();
});

it("resolves a recovery only once the frames it includes from other instances have arrived here live, so the client's hold drops them", async () => {
  const prefix = `vigil-test:${randomSuffix()}:`;
  const make = async (instanceId: string, delivered: string[]) => {
    const metrics = createMetrics();
    const faults = new Faults(log, metrics);
    const bus = new RedisBus(SERVICES.redisUrl, log, faults);
    buses.push(bus);
    await bus.connect();
    const fanout = await createRedisFanout({ bus, keyPrefix: prefix, instanceId, ...HISTORY, log, metrics, faults });
    await fanout.start({ toDevice: (_device, frame) => void delivered.push(frame), toAll: () => undefined });
    return fanout;
  };
  const owner = await make('owner', []);
  const here: string[] = [];
  const other = await make('other', here);
  const late: number[] = [];
  await other.follow('d1');
  for (let seq = 1; seq <= 300; seq++) {
    owner.toDevice('d1', seq, JSON.stringify({ type: 'device_update', device_id: 'd1', seq }), 'u');
    await new Promise((r) => setImmediate(r)); // the owner's frame is on its way to Redis
    const recovery = await other.recover('d1', seq - 1, 0);
    // What the recovery includes has arrived live already: a live copy after it would be a duplicate.
    if (recovery.recovered && recovery.seq >= seq && here.length < seq) late.push(seq);
  }
  expect(late).toEqual([]);
  await Promise.all([owner.stop(), other.stop()]);
});
