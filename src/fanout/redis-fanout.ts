import type { RedisBus } from '../cluster/redis-bus.js';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Fanout, FencedListener, FleetRecovery, LocalDelivery, Recovery } from './fanout.js';
import type { HistorySettings } from './local-fanout.js';
import { FANOUT_FRAMES, FLEET_RECOVER } from './redis-fanout-script.js';

export interface RedisFanoutOptions extends HistorySettings {
  readonly bus: RedisBus;
  readonly keyPrefix: string;
  readonly instanceId: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly faults: Faults;
}

/** Frames per script call: bounds one call's time in Redis. */
const BATCH_FRAMES = 500;
const ALL = '*';

type RedisWithFanout = RedisBus['commands'] & {
  vigilFanout(...args: (string | number)[]): Promise<(number | string)[]>;
  vigilFleetRecover(prefix: string, since: number): Promise<[number, number?, string[]?]>;
};

/**
 * Fan-out across hub instances through Redis pub/sub (the Centrifugo Redis-engine pattern): frames
 * are batched (one Lua call per event-loop turn) to a channel per device, which other instances
 * subscribe to only while they have followers; each instance drops its own echo by its id. The same
 * call keeps each device's seq and time window of history, and numbers the `*` feed (fleet_seq) for
 * the whole cluster, so a client can resume on any instance.
 *
 * This instance's own clients get its frames the way every other instance's clients do: from the
 * channels, on the one subscriber connection. Redis sends that connection the messages of every
 * channel in the order it published them, so a connection following a device and `*` gets the
 * device's frames in seq order, whichever channel brings each (the device's own frames on
 * ch:<device>, its status, health and alerts on ch:*); delivering the owner's device frames from the
 * script's reply, on the command connection, raced the `*` ones (docs/scaling.md, "Order of a
 * device's frames"). Every frame a client holds is still stored in Redis first (seq, history,
 * fleet_seq) and fenced frames are never published, so an instance killed at any moment leaves no
 * client with a frame the others cannot resume after. When Redis does not answer, frames are
 * delivered here from the failed call (`*` frames without fleet_seq): availability over
 * resumability.
 */
export async function createRedisFanout(opts: RedisFanoutOptions): Promise<Fanout> {
  const { bus, instanceId } = opts;
  const now = opts.now ?? Date.now;
  const commands = bus.commands as RedisWithFanout;
  commands.defineCommand('vigilFanout', { numberOfKeys: 0, lua: FANOUT_FRAMES });
  commands.defineCommand('vigilFleetRecover', { numberOfKeys: 0, lua: FLEET_RECOVER });
  const prefix = opts.keyPrefix;
  const channelPrefix = `${prefix}ch:`;
  const seqKey = `${prefix}fanout:seq`;
  const epochKey = `${prefix}cluster:epoch`;
  // One epoch for all instances, kept in Redis: seq numbering continues across instances and restarts.
  await commands.set(epochKey, `${Date.now().toString(36)}`, 'NX');
  const epoch = (await commands.get(epochKey)) ?? 'unknown';
  const limits = [opts.windowMs, opts.maxBytesPerDevice, opts.ttlMs];
  const fleetLimits = [opts.fleetWindowMs, opts.fleetMaxBytes];
  let local: LocalDelivery | null = null;
  // Set at start (the hub, created after the fan-out): before it no frame is published.
  let fencedListener: FencedListener = () => undefined;
  let queued: (string | number)[] = [];
  let scheduled = false;
  /** Script calls whose frames are not delivered here yet, and the delivery of the last one. */
  let inFlight = 0;
  let lastDelivered: Promise<void> = Promise.resolve();
  const follows = new Map<string, { count: number; ready: Promise<void> }>();
  const echo = `${instanceId}|`;
  const dropped = opts.dropped;

  /**
   * A batch Redis stored: its frames reach this instance's clients through the channels, like every
   * other instance's (bus.route below); here only the counts and the fenced frames (never published).
   */
  const stored = (chunk: readonly (string | number)[], result: readonly (number | string)[]) => {
    if (dropped) {
      for (const [slot, scope, reason] of [[1, 'device', 'window'], [2, 'device', 'bytes'], [3, 'fleet', 'window'], [4, 'fleet', 'bytes']] as const) {
        const n = Number(result[slot]);
        if (n > 0) dropped(scope, reason, n);
      }
    }
    for (let j = 5; j < result.length; j += 2) {
      opts.metrics.fanoutFenced.inc();
      // The script names a fenced frame by its index in the call (4 arguments per frame).
      fencedListener(chunk[Number(result[j]) * 4] as string, Number(result[j + 1]));
    }
  };
  /** Redis did not take a batch: this instance's clients get its frames from here, unnumbered by Redis. */
  const unstored = (chunk: readonly (string | number)[]) => {
    for (let i = 0; i < chunk.length; i += 4) {
      const channel = chunk[i] as string;
      if (!follows.has(channel)) continue;
      if (channel === ALL) local?.toAll(chunk[i + 3] as string, chunk[i + 2] as string);
      else local?.toDevice(channel, chunk[i + 3] as string, chunk[i + 2] as string);
    }
  };

  const flush = () => {
    scheduled = false;
    const args = queued;
    queued = [];
    for (let i = 0; i < args.length; i += BATCH_FRAMES * 4) {
      const chunk = args.slice(i, i + BATCH_FRAMES * 4);
      inFlight++;
      lastDelivered = commands
        .vigilFanout(prefix, instanceId, ...limits, now(), ...fleetLimits, ...chunk)
        .then(
          (result) => stored(chunk, result),
          () => {
            opts.metrics.fanoutPublishFailures.inc(chunk.length / 4);
            unstored(chunk);
          },
        )
        .catch(opts.faults.catcher('fanout', { op: 'deliver' }))
        .finally(() => void inFlight--);
    }
  };
  const guardedFlush = opts.faults.guard('fanout', flush);
  const enqueue = (channel: string, seq: number, key: string, frame: string) => {
    queued.push(channel, seq, key, frame);
    if (!scheduled) {
      scheduled = true;
      setImmediate(guardedFlush);
    }
  };

  bus.route(channelPrefix, 'fanout', (channel, message) => {
    // This instance's own frames come back too and are delivered from here: one connection brings
    // every channel in the order Redis published (and, for `*`, numbered) them.
    if (local === null) return;
    const text = message.toString('utf8');
    const a = text.indexOf('|');
    const b = text.indexOf('|', a + 1);
    const c = text.indexOf('|', b + 1);
    if (a === -1 || b === -1 || c === -1) return;
    if (!text.startsWith(echo)) opts.metrics.fanoutRemoteFrames.inc();
    const key = text.slice(b + 1, c);
    const frame = text.slice(c + 1);
    if (channel === ALL) local.toAll(frame, key);
    else local.toDevice(channel, frame, key);
  });

  /** Writes what is queued now; the reads that follow on the same connection see it. */
  const writeQueued = () => {
    if (queued.length > 0) flush();
  };

  return {
    kind: 'redis',
    epoch,
    async start(delivery, onFenced) {
      local = delivery;
      if (onFenced) fencedListener = onFenced;
    },
    toDevice(deviceId, seq, frame, key) {
      enqueue(deviceId, seq, key, frame);
    },
    // Every frame goes to Redis: it keeps the seq fence and other instances' followers see it.
    wants: () => true,
    toAll(frame, key) {
      enqueue(ALL, 0, key, frame);
    },
    follow(channel) {
      const entry = follows.get(channel);
      if (entry !== undefined) {
        entry.count++;
        return entry.ready;
      }
      const ready = bus.subscribe(channelPrefix + channel);
      follows.set(channel, { count: 1, ready });
      ready.catch(() => undefined);
      return ready;
    },
    unfollow(channel) {
      const entry = follows.get(channel);
      if (entry === undefined || --entry.count > 0) return;
      follows.delete(channel);
      bus.unsubscribe(channelPrefix + channel);
    },
    async recover(deviceId, sinceSeq): Promise<Recovery> {
      // Frames this instance numbered but has not written yet: written first, so the read below
      // (same connection, in order) includes them; they reach the session's hold before it resolves.
      writeQueued();
      const result = await commands.multi().hget(seqKey, deviceId).lrange(`${prefix}hist:${deviceId}`, 0, -1).exec();
      const current = Number(result?.[0]?.[1] ?? 0);
      const entries = (result?.[1]?.[1] ?? []) as string[];
      // Frames published before that read may still be on their way on the other connection; the
      // session holds live frames until this resolves and drops those included here, so wait for
      // them: past this point they would reach the client a second time.
      await bus.barrier();
      const frames = framesAfter(entries, sinceSeq, current, now() - opts.windowMs);
      return frames === null ? { recovered: false } : { recovered: true, seq: current, frames };
    },
    async recoverFleet(since): Promise<FleetRecovery> {
      writeQueued();
      const [head, kept, entries] = await commands.vigilFleetRecover(prefix, since ?? -1);
      await bus.barrier(); // as in recover: every `*` frame up to `head` has arrived here live
      if (since === null) return { fleetSeq: head, frames: [] };
      const frames = kept === 1 ? framesAfter(entries ?? [], since, head, now() - opts.fleetWindowMs) : null;
      return { fleetSeq: head, frames };
    },
    settled() {
      writeQueued();
      // Stored frames arrive through the channels: past the barrier, those stored so far have.
      if (follows.size > 0) return lastDelivered.then(() => bus.barrier());
      return inFlight === 0 ? null : lastDelivered;
    },
    async stop() {
      writeQueued();
      local = null;
    },
  };
}

/** The frames of history entries (`seq|at|frame`) numbered since + 1 … head, or null when any is missing or too old. */
function framesAfter(entries: readonly string[], since: number, head: number, oldest: number): string[] | null {
  if (since === head) return [];
  if (since > head) return null;
  const frames: string[] = [];
  let expected = since + 1;
  for (const entry of entries) {
    const a = entry.indexOf('|');
    const seq = Number(entry.slice(0, a));
    if (seq <= since) continue;
    if (seq > head) break;
    const b = entry.indexOf('|', a + 1);
    if (seq !== expected || Number(entry.slice(a + 1, b)) < oldest) return null;
    frames.push(entry.slice(b + 1));
    expected++;
  }
  return expected === head + 1 ? frames : null;
}
