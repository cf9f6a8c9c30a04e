import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { redactUrl } from '../transport/redact-url.js';
import { CLAIM_ONE, CLAIM_DUE, TOUCH_MANY } from './redis-scripts.js';
import type { PresenceHealth, PresenceListener, PresenceStore } from './presence-store.js';

export interface RedisPresenceOptions {
  readonly url: string;
  readonly keyPrefix: string;
  readonly sweepMs: number;
  readonly log: Logger;
  /** Touches are sent in one script call at most this often. */
  readonly flushMs?: number;
}

interface PendingTouch {
  lastSeen: number;
  deadline: number;
}

type RedisWithScripts = Redis & {
  vigilTouch(zset: string, seen: string, prefix: string, ...args: (string | number)[]): Promise<number>;
  vigilClaimDue(zset: string, seen: string, prefix: string, now: number, limit: number): Promise<string[]>;
  vigilClaimOne(zset: string, seen: string, prefix: string, id: string, now: number): Promise<string[] | null>;
};

const CLAIM_BATCH = 1000;
const FLUSH_BATCH = 2000;

/**
 * Presence in Redis: a key per device (`SET … PX`, value = last seen) for keyspace expiry events,
 * a sorted set of deadlines swept every `sweepMs` (expiry events alone come late: Redis expires
 * keys by sampling), and a hash of last-seen times. Each expiry is claimed atomically by a Lua
 * script (ZREM decides), so the event path, the sweep and several hubs report it exactly once.
 *
 * Coalescing: the deadline written to Redis is the true deadline plus `slack`
 * (min(500 ms, timeout / 4)). A later touch whose true deadline is not past the written one needs
 * no round trip; so a device is reported offline at most `slack` + `sweepMs` after its true
 * deadline, never before it.
 */
export function createRedisPresence(opts: RedisPresenceOptions): PresenceStore {
  const prefix = `${opts.keyPrefix}presence:`;
  const zset = `${prefix}{deadlines}`;
  const seenHash = `${prefix}{seen}`;
  const db = Number(new URL(opts.url).pathname.slice(1) || 0);
  const flushMs = opts.flushMs ?? 20;
  const redisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true } as const;
  const commands = new Redis(opts.url, redisOptions) as RedisWithScripts;
  const subscriber = new Redis(opts.url, { ...redisOptions, enableOfflineQueue: true });
  commands.defineCommand('vigilTouch', { numberOfKeys: 3, lua: TOUCH_MANY });
  commands.defineCommand('vigilClaimDue', { numberOfKeys: 3, lua: CLAIM_DUE });
  commands.defineCommand('vigilClaimOne', { numberOfKeys: 3, lua: CLAIM_ONE });

  /** The deadline last written to Redis per device (coalescing). */
  const written = new Map<string, number>();
  const pending = new Map<string, PendingTouch>();
  let listener: PresenceListener | null = null;
  let flushTimer: NodeJS.Timeout | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;
  let flushing = false;
  let sweeping = false;
  let stopped = false;
  let failing = false;
  let everReady = false;
  let lastError = '';

  const noteFailure = (error: Error) => {
    lastError = error.message;
    if (!failing) opts.log.warn({ err: error.message, url: redactUrl(opts.url) }, 'redis presence failing; touches are kept and retried');
    failing = true;
  };
  const noteSuccess = () => {
    if (failing) opts.log.info('redis presence recovered');
    failing = false;
  };

  async function flush(): Promise<void> {
    if (flushing || pending.size === 0) return;
    flushing = true;
    const batch: [string, PendingTouch][] = [];
    for (const entry of pending) {
      batch.push(entry);
      if (batch.length >= FLUSH_BATCH) break;
    }
    for (const [id] of batch) pending.delete(id);
    const args: (string | number)[] = [Date.now()];
    for (const [id, t] of batch) args.push(id, t.lastSeen, t.deadline);
    try {
      await commands.vigilTouch(zset, seenHash, prefix, ...args);
      noteSuccess();
    } catch (error) {
      // Put them back unless a newer touch arrived meanwhile; forget what we believed was written.
      for (const [id, t] of batch) {
        if (!pending.has(id)) pending.set(id, t);
        written.delete(id);
      }
      noteFailure(error as Error);
    } finally {
      flushing = false;
    }
    if (pending.size >= FLUSH_BATCH) void flush();
  }

  function report(id: string, lastSeen: string | undefined, deadline: string | undefined): void {
    written.delete(id);
    if (pending.has(id)) return; // heard again meanwhile: the pending touch brings it back
    listener?.onExpired(id, Number(lastSeen), Number(deadline));
  }

  async function sweep(): Promise<void> {
    if (sweeping || stopped) return;
    sweeping = true;
    try {
      for (;;) {
        const claimed = await commands.vigilClaimDue(zset, seenHash, prefix, Date.now(), CLAIM_BATCH);
        for (let i = 0; i < claimed.length; i += 3) report(claimed[i]!, claimed[i + 1], claimed[i + 2]);
        if (claimed.length < CLAIM_BATCH * 3) break;
      }
      noteSuccess();
    } catch (error) {
      noteFailure(error as Error);
    } finally {
      sweeping = false;
    }
  }

  async function onExpiredEvent(key: string): Promise<void> {
    if (!key.startsWith(prefix) || key.startsWith(`${prefix}{`)) return;
    const id = key.slice(prefix.length);
    try {
      const claimed = await commands.vigilClaimOne(zset, seenHash, prefix, id, Date.now());
      if (claimed) report(id, claimed[0], claimed[1]);
    } catch (error) {
      noteFailure(error as Error); // the sweep will claim it
    }
  }

  async function enableExpiryEvents(): Promise<void> {
    let current: string;
    try {
      const reply = (await commands.config('GET', 'notify-keyspace-events')) as string[];
      current = reply[1] ?? '';
      const wanted = mergeFlags(current);
      if (wanted !== current) await commands.config('SET', 'notify-keyspace-events', wanted);
    } catch (error) {
      throw new Error(
        `Redis refused CONFIG for notify-keyspace-events (${(error as Error).message}); ` +
          "set notify-keyspace-events to include 'Ex' in redis.conf (e.g. notify-keyspace-events Ex)",
      );
    }
  }

  return {
    kind: 'redis',
    async start(l) {
      listener = l;
      try {
        await commands.connect();
        await subscriber.connect();
      } catch (error) {
        commands.disconnect();
        subscriber.disconnect();
        throw new Error(`Redis at ${redactUrl(opts.url)} is not reachable: ${(error as Error).message}`);
      }
      await enableExpiryEvents();
      const channel = `__keyevent@${db}__:expired`;
      subscriber.on('message', (_channel: string, key: string) => void onExpiredEvent(key));
      await subscriber.subscribe(channel);
      everReady = true;
      // Events published while we were disconnected are lost: reconcile and let the sweep catch up.
      commands.on('ready', () => {
        if (!everReady || stopped) return;
        void enableExpiryEvents().catch((error: Error) => noteFailure(error));
        listener?.onReconnected?.();
      });
      commands.on('error', (error: Error) => noteFailure(error));
      subscriber.on('error', (error: Error) => noteFailure(error));
      flushTimer = setInterval(() => void flush(), flushMs);
      flushTimer.unref();
      sweepTimer = setInterval(() => void sweep(), opts.sweepMs);
      sweepTimer.unref();
    },
    touch(deviceId, at, timeoutMs) {
      const deadline = at + timeoutMs;
      const writtenDeadline = written.get(deviceId);
      if (writtenDeadline !== undefined && deadline <= writtenDeadline) return;
      const slack = Math.min(500, timeoutMs / 4);
      const stored = deadline + slack;
      written.set(deviceId, stored);
      const existing = pending.get(deviceId);
      if (existing !== undefined) {
        existing.lastSeen = Math.max(existing.lastSeen, at);
        existing.deadline = Math.max(existing.deadline, stored);
      } else pending.set(deviceId, { lastSeen: at, deadline: stored });
      if (pending.size >= FLUSH_BATCH) void flush();
    },
    remove(deviceId) {
      written.delete(deviceId);
      pending.delete(deviceId);
      commands
        .multi()
        .del(prefix + deviceId)
        .zrem(zset, deviceId)
        .hdel(seenHash, deviceId)
        .exec()
        .catch((error: Error) => noteFailure(error));
    },
    async lastSeen(deviceIds) {
      if (deviceIds.length === 0) return [];
      const values = await commands.mget(deviceIds.map((id) => prefix + id));
      return values.map((v) => (v === null ? null : Number(v)));
    },
    async present() {
      const now = Date.now();
      const ids = await commands.zrangebyscore(zset, now, '+inf');
      const result = new Map<string, number>();
      for (let i = 0; i < ids.length; i += CLAIM_BATCH) {
        const chunk = ids.slice(i, i + CLAIM_BATCH);
        const seen = await commands.hmget(seenHash, ...chunk);
        chunk.forEach((id, j) => result.set(id, Number(seen[j] ?? now)));
      }
      return result;
    },
    health(): PresenceHealth {
      if (commands.status !== 'ready') return { ok: false, detail: `redis ${commands.status}${lastError ? `: ${lastError}` : ''}` };
      if (failing) return { ok: false, detail: `redis commands failing: ${lastError}` };
      return { ok: true, detail: `redis, ${written.size} devices tracked by this hub` };
    },
    async stop() {
      stopped = true;
      if (flushTimer !== null) clearInterval(flushTimer);
      if (sweepTimer !== null) clearInterval(sweepTimer);
      if (commands.status === 'ready') await flush().catch(() => undefined);
      listener = null;
      await Promise.allSettled([commands.quit(), subscriber.quit()]);
    },
  };
}

/** Adds E (keyevent) and x (expired) to the existing flags, keeping whatever else is set. */
export function mergeFlags(current: string): string {
  let flags = current;
  if (!flags.includes('E')) flags += 'E';
  if (!flags.includes('x') && !flags.includes('A')) flags += 'x';
  return flags;
}
