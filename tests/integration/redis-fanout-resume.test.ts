import { afterAll, expect, it } from 'vitest';
import { RedisBus } from '../../src/cluster/redis-bus.js';
import { Faults } from '../../src/errors/boundary.js';
import { createRedisFanout } from '../../src/fanout/redis-fanout.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';

/*
 * Resuming with since_seq, on the real Redis. On the instance that numbers the device: the owner
 * hands a frame to its own clients at once and writes it to Redis (seq, history) at the end of the
 * event-loop turn, so a client resuming in that same turn, which missed the frames already handed
 * out, must get them from its recovery (a gap otherwise). On another instance: the history is read
 * on the command connection and the live frames come on the subscriber connection, so a recovery
 * must not be answered before the frames it includes have arrived live (the client holds live
 * frames until then and drops those the recovery had; a duplicate otherwise).
 */
const log = createLogger('error', { write: () => undefined });
const buses: RedisBus[] = [];

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close()));
});

it('recovers the frames the owner handed out this turn and has not written to Redis yet', async () => {
  const metrics = createMetrics();
  const faults = new Faults(log, metrics);
  const bus = new RedisBus(SERVICES.redisUrl, log, faults);
  buses.push(bus);
  await bus.connect();
  const fanout = await createRedisFanout({
    bus,
    keyPrefix: `vigil-test:${randomSuffix()}:`,
    instanceId: 'owner',
    historySize: 32,
    historyTtlMs: 60_000,
    log,
    metrics,
    faults,
    onFenced: () => undefined,
  });
  const delivered: string[] = [];
  await fanout.start({ toDevice: (_device, frame) => void delivered.push(frame), toAll: () => undefined });
  await fanout.follow('d1');

  const frame = (seq: number) => JSON.stringify({ type: 'device_update', device_id: 'd1', seq });
  fanout.toDevice('d1', 1, frame(1), 'u');
  await new Promise((r) => setImmediate(r)); // written to Redis
  fanout.toDevice('d1', 2, frame(2), 'u');
  fanout.toDevice('d1', 3, frame(3), 'u');
  expect(delivered).toHaveLength(3); // the owner's clients have 2 and 3 already

  // A client that saw 1 resumes in the same turn: it gets 2 and 3 from the recovery.
  expect(await fanout.recover('d1', 1, 3)).toEqual({ recovered: true, seq: 3, frames: [frame(2), frame(3)] });
  expect(await fanout.recover('d1', 0, 3)).toEqual({ recovered: true, seq: 3, frames: [frame(1), frame(2), frame(3)] });
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
    const fanout = await createRedisFanout({ bus, keyPrefix: prefix, instanceId, historySize: 32, historyTtlMs: 60_000, log, metrics, faults, onFenced: () => undefined });
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
