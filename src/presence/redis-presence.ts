import { Redis } from 'ioredis';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import { redactUrl } from '../redact-url.js';
import { randomBytes } from 'node:crypto';
import type { DeviceStatus, StatusChange, TransitionReason } from '../domain/device-status.js';
import { LATE_EXPIRY_MS } from './late-expiry.js';
import { CLAIM_DUE, CLAIM_ONE, CLAIM_TRANSITION, TOUCH_MANY } from './redis-scripts.js';
import type { PresenceHealth, PresenceListener, PresenceStore } from './presence-store.js';

export interface RedisPresenceOptions {
  readonly url: string;
  readonly keyPrefix: string;
  readonly sweepMs: number;
  readonly log: Logger;
  readonly faults: Faults;
  /** Touches are sent in one script call at most this often. */
  readonly flushMs?: number;
}

interface PendingTouch {
  lastSeen: number;
  deadline: number;
}

type ScriptKeys = [deadlines: string, seen: string, statuses: string, prefix: string, channel: string];
type RedisWithScripts = Redis & {
  vigilTouch(...args: [...ScriptKeys, ...(string | number)[]]): Promise<number>;
  vigilClaimDue(...args: [...ScriptKeys, now: number, limit: number, hub: string, lateMs: number]): Promise<string[]>;
  vigilClaimOne(...args: [...ScriptKeys, id: string, now: number, hub: string, lateMs: number]): Promise<string[] | null>;
  vigilClaim(...args: [...ScriptKeys, id: string, status: string, reason: string, at: number, lastSeen: string, hub: string]): Promise<number>;
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
  const channel = `${prefix}{transitions}`;
  const keys: ScriptKeys = [`${prefix}{deadlines}`, `${prefix}{seen}`, `${prefix}{status}`, prefix, channel];
  /** Tags this hub's announcements so it can ignore its own echo. */
  const hubId = randomBytes(6).toString('base64url');
  const db = Number(new URL(opts.url).pathname.slice(1) || 0);
  const flushMs = opts.flushMs ?? 20;
  const redisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true } as const;
  const commands = new Redis(opts.url, redisOptions) as RedisWithScripts;
  const subscriber = new Redis(opts.url, { ...redisOptions, enableOfflineQueue: true });
  commands.defineCommand('vigilTouch', { numberOfKeys: 5, lua: TOUCH_MANY });
  commands.defineCommand('vigilClaimDue', { numberOfKeys: 5, lua: CLAIM_DUE });
  commands.defineCommand('vigilClaimOne', { numberOfKeys: 5, lua: CLAIM_ONE });
  commands.defineCommand('vigilClaim', { numberOfKeys: 5, lua: CLAIM_TRANSITION });

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
  let judging = true;
  let lastError = '';

  const { faults } = opts;
  const onFlushFault = faults.catcher('presence', { op: 'flush' });
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
      await commands.vigilTouch(...keys, ...args);
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
    if (pending.size >= FLUSH_BATCH) flush().catch(onFlushFault);
  }

  function report(id: string, lastSeen: string | undefined, deadline: string | undefined): void {
    written.delete(id);
    // Even when a touch is pending (heard within the last flush interval), the hub decides: it
    // re-arms the device and takes its online status back.
    // The hub's fault is its own (reported as such), not a Redis failure, and must not stop the other claims.
    try {
      listener?.onExpired(id, Number(lastSeen), Number(deadline));
    } catch (error) {
      faults.report('presence', error, { op: 'expired' });
    }
  }

  async function sweep(): Promise<void> {
    if (sweeping || stopped || !judging) return;
    sweeping = true;
    try {
      await flush(); // touches heard before this sweep reach Redis before anything is claimed
      for (;;) {
        const claimed = await commands.vigilClaimDue(...keys, Date.now(), CLAIM_BATCH, hubId, LATE_EXPIRY_MS);
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
    if (!key.startsWith(prefix) || key.startsWith(`${prefix}{`)) return; // not a device key
    if (!judging) return; // the first sweep once judging claims it
    const id = key.slice(prefix.length);
    try {
      const claimed = await commands.vigilClaimOne(...keys, id, Date.now(), hubId, LATE_EXPIRY_MS);
      if (claimed) report(id, claimed[0], claimed[1]);
    } catch (error) {
      noteFailure(error as Error); // the sweep will claim it
    }
  }

  function onAnnouncement(message: string): void {
    const change = parseAnnouncement(message, hubId);
    if (change === null) return;
    if (change.status === 'offline') written.delete(change.deviceId);
    try {
      listener?.onRemoteTransition?.(change);
    } catch (error) {
      faults.report('presence', error, { op: 'remote-transition' });
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
    async start(l, judgeAfter) {
      listener = l;
      if (judgeAfter !== undefined) {
        judging = false;
        const judge = () => {
          judging = true;
          void sweep();
        };
        judgeAfter.then(judge, judge);
      }
      try {
        await commands.connect();
        await subscriber.connect();
      } catch (error) {
        commands.disconnect();
        subscriber.disconnect();
        throw new Error(`Redis at ${redactUrl(opts.url)} is not reachable: ${(error as Error).message}`);
      }
      await enableExpiryEvents();
      const expired = `__keyevent@${db}__:expired`;
      subscriber.on('message', (from: string, message: string) => {
        if (from === expired) onExpiredEvent(message).catch(faults.catcher('presence', { op: 'expiry-event' }));
        else if (from === channel) onAnnouncement(message);
      });
      await subscriber.subscribe(expired, channel);
      everReady = true;
      // Events published while we were disconnected are lost: reconcile and let the sweep catch up.
      commands.on(
        'ready',
        faults.guard('presence', () => {
          if (!everReady || stopped) return;
          // Redis may have restarted empty: write every touch again rather than trust old deadlines.
          written.clear();
          enableExpiryEvents().catch((error: Error) => noteFailure(error));
          listener?.onReconnected?.();
        }),
      );
      commands.on('error', (error: Error) => noteFailure(error));
      subscriber.on('error', (error: Error) => noteFailure(error));
      flushTimer = setInterval(faults.guard('presence', flush), flushMs);
      flushTimer.unref();
      sweepTimer = setInterval(faults.guard('presence', sweep), opts.sweepMs);
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
      if (pending.size >= FLUSH_BATCH) flush().catch(onFlushFault);
    },
    claim(change) {
      if (change.status === 'offline') {
        written.delete(change.deviceId);
        pending.delete(change.deviceId);
      }
      return commands.vigilClaim(
        ...keys,
        change.deviceId,
        change.status,
        change.reason,
        change.at,
        change.lastSeen === null ? '' : String(change.lastSeen),
        hubId,
      ).then((won) => won === 1);
    },
    async lastSeen(deviceIds) {
      if (deviceIds.length === 0) return [];
      const out: (number | null)[] = [];
      for (let i = 0; i < deviceIds.length; i += CLAIM_BATCH) {
        const values = await commands.mget(deviceIds.slice(i, i + CLAIM_BATCH).map((id) => prefix + id));
        for (const v of values) out.push(v === null ? null : Number(v));
      }
      return out;
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
      if (commands.status === 'ready') await flush().catch(onFlushFault);
      listener = null;
      await Promise.allSettled([commands.quit(), subscriber.quit()]);
    },
  };
}

/** "hub|id|status|reason|at|lastSeen" from another hub, or null (own echo or malformed). */
export function parseAnnouncement(message: string, ownHubId: string): StatusChange | null {
  const [hub, deviceId, status, reason, at, lastSeen] = message.split('|');
  if (hub === ownHubId || !deviceId || (status !== 'online' && status !== 'offline')) return null;
  return {
    deviceId,
    status: status as DeviceStatus,
    previous: status === 'online' ? 'offline' : 'online',
    reason: reason as TransitionReason,
    at: Number(at),
    lastSeen: lastSeen ? Number(lastSeen) : null,
  };
}

/** Adds E (keyevent) and x (expired) to the existing flags, keeping whatever else is set. */
export function mergeFlags(current: string): string {
  let flags = current;
  if (!flags.includes('E')) flags += 'E';
  if (!flags.includes('x') && !flags.includes('A')) flags += 'x';
  return flags;
}
