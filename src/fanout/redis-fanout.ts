import type { RedisBus } from '../cluster/redis-bus.js';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Fanout, LocalDelivery, Recovery } from './fanout.js';
import { FANOUT_FRAMES } from './redis-fanout-script.js';

export interface RedisFanoutOptions {
  readonly bus: RedisBus;
  readonly keyPrefix: string;
  readonly instanceId: string;
  readonly historySize: number;
  readonly historyTtlMs: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly faults: Faults;
  /** A frame was fenced: another instance numbered this device past `storedSeq` (ownership moved). */
  readonly onFenced: (deviceId: string, storedSeq: number) => void;
}

/** Frames per script call: bounds one call's time in Redis. */
const BATCH_FRAMES = 500;

type RedisWithFanout = RedisBus['commands'] & { vigilFanout(...args: (string | number)[]): Promise<string[]> };

/**
 * Fan-out across hub instances through Redis pub/sub (the Centrifugo Redis-engine pattern): frames
 * are delivered to this instance's clients at once, then batched (one Lua call per event-loop turn)
 * to a channel per device, which other instances subscribe to only while they have followers. Each
 * instance drops its own echo by its id. The same call keeps each device's seq and short history
 * in Redis, so a client can resume on any instance.
 */
export async function createRedisFanout(opts: RedisFanoutOptions): Promise<Fanout> {
  const { bus, instanceId } = opts;
  const commands = bus.commands as RedisWithFanout;
  commands.defineCommand('vigilFanout', { numberOfKeys: 0, lua: FANOUT_FRAMES });
  const channelPrefix = `${opts.keyPrefix}ch:`;
  const seqKey = `${opts.keyPrefix}fanout:seq`;
  const epochKey = `${opts.keyPrefix}cluster:epoch`;
  // One epoch for all instances, kept in Redis: seq numbering continues across instances and restarts.
  await commands.set(epochKey, `${Date.now().toString(36)}`, 'NX');
  const epoch = (await commands.get(epochKey)) ?? 'unknown';
  const head = [opts.keyPrefix, instanceId, opts.historySize, opts.historyTtlMs];
  let local: LocalDelivery | null = null;
  let queued: (string | number)[] = [];
  let scheduled = false;
  const follows = new Map<string, { count: number; ready: Promise<void> }>();
  const echo = `${instanceId}|`;

  const flush = () => {
    scheduled = false;
    const args = queued;
    queued = [];
    for (let i = 0; i < args.length; i += BATCH_FRAMES * 4) {
      const chunk = args.slice(i, i + BATCH_FRAMES * 4);
      commands.vigilFanout(...head, ...chunk).then(
        (stale) => {
          for (let j = 0; j < stale.length; j += 2) {
            opts.metrics.fanoutFenced.inc();
            opts.onFenced(stale[j]!, Number(stale[j + 1]));
          }
        },
        () => opts.metrics.fanoutPublishFailures.inc(chunk.length / 4),
      ).catch(opts.faults.catcher('fanout', { op: 'fenced' }));
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
    const text = message.toString('utf8');
    if (text.startsWith(echo) || local === null) return;
    const a = text.indexOf('|');
    const b = text.indexOf('|', a + 1);
    const c = text.indexOf('|', b + 1);
    if (a === -1 || b === -1 || c === -1) return;
    const key = text.slice(b + 1, c);
    const frame = text.slice(c + 1);
    opts.metrics.fanoutRemoteFrames.inc();
    if (channel === '*') local.toAll(frame, key);
    else local.toDevice(channel, frame, key);
  });

  return {
    kind: 'redis',
    epoch,
    async start(delivery) {
      local = delivery;
    },
    toDevice(deviceId, seq, frame, key) {
      if (follows.has(deviceId)) local?.toDevice(deviceId, frame, key);
      enqueue(deviceId, seq, key, frame);
    },
    // Every frame goes to Redis: it keeps the seq fence and other instances' followers see it.
    wants: () => true,
    toAll(frame, key) {
      if (follows.has('*')) local?.toAll(frame, key);
      enqueue('*', 0, key, frame);
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
      // This instance hands its frames to its own clients at once and writes them to Redis at the
      // end of the turn. A client resuming here now has missed those already handed out, and they
      // will not reach it live: write them first, so the read below (same connection, in order)
      // includes them.
      if (queued.length > 0) flush();
      const result = await commands.multi().hget(seqKey, deviceId).lrange(`${opts.keyPrefix}hist:${deviceId}`, 0, -1).exec();
      const current = Number(result?.[0]?.[1] ?? 0);
      const entries = (result?.[1]?.[1] ?? []) as string[];
      // Frames published before that read may still be on their way on the other connection; the
      // session holds live frames until this resolves and drops those included here, so wait for
      // them: past this point they would reach the client a second time.
      await bus.barrier();
      if (sinceSeq === current) return { recovered: true, seq: current, frames: [] };
      if (sinceSeq > current) return { recovered: false };
      const frames: string[] = [];
      let expected = sinceSeq + 1;
      for (const entry of entries) {
        const bar = entry.indexOf('|');
        const seq = Number(entry.slice(0, bar));
        if (seq <= sinceSeq) continue;
        if (seq !== expected) return { recovered: false };
        frames.push(entry.slice(bar + 1));
        expected++;
      }
      return expected === current + 1 ? { recovered: true, seq: current, frames } : { recovered: false };
    },
    async stop() {
      if (queued.length > 0) flush();
      local = null;
    },
  };
}
