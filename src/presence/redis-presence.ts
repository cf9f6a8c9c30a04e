import { Redis } from 'ioredis';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import { redactUrl } from '../redact-url.js';
import { randomBytes } from 'node:crypto';
import { LATE_EXPIRY_MS } from './late-expiry.js';
import { lastSeenInChunks } from './redis-last-seen.js';
import { enableExpiryEvents, parseAnnouncement } from './redis-notifications.js';
import { CLAIM_DUE, CLAIM_ONE, CLAIM_TRANSITIONS, TOUCH_MANY } from './redis-scripts.js';
import { ClaimQueue } from './redis-claim-queue.js';
import { TouchQueue } from './redis-touch-queue.js';
import type { PresenceHealth, PresenceListener, PresenceStore } from './presence-store.js';
import { JudgeGate } from './judge-gate.js';

export interface RedisPresenceOptions {
  readonly url: string;
  readonly keyPrefix: string;
  readonly sweepMs: number;
  readonly log: Logger;
  readonly faults: Faults;
  /** Touches are sent in one script call at most this often. */
  readonly flushMs?: number;
}

type ScriptKeys = [deadlines: string, seen: string, statuses: string, prefix: string, channel: string];
type RedisWithScripts = Redis & {
  vigilTouch(...args: [...ScriptKeys, ...(string | number)[]]): Promise<number>;
  vigilClaimDue(...args: [...ScriptKeys, now: number, limit: number, hub: string, lateMs: number]): Promise<string[]>;
  vigilClaimOne(...args: [...ScriptKeys, id: string, now: number, hub: string, lateMs: number]): Promise<string[] | null>;
  vigilClaims(...args: [...ScriptKeys, hub: string, ...(string | number)[]]): Promise<number[]>;
};

const CLAIM_BATCH = 1000;

export { mergeFlags, parseAnnouncement } from './redis-notifications.js';

/**
 * Presence in Redis: a key per device (`SET … PX`, value = last seen) for keyspace expiry events,
 * a sorted set of deadlines swept every `sweepMs` (expiry events alone come late: Redis expires
 * keys by sampling), and a hash of last-seen times. Each expiry is claimed atomically by a Lua
 * script (ZREM decides), so the event path, the sweep and several hubs report it exactly once.
 *
 * Touches are coalesced and written in bounded batches (redis-touch-queue.ts), so a device is
 * reported offline at most 2 × `sweepMs` after its true deadline, never before it. No call's
 * size grows with the fleet: touches go FLUSH_BATCH devices a call, last-seen reads LAST_SEEN_BATCH
 * keys an MGET, claims CLAIM_BATCH expiries a call.
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
  commands.defineCommand('vigilClaims', { numberOfKeys: 5, lua: CLAIM_TRANSITIONS });

  let listener: PresenceListener | null = null;
  let flushTimer: NodeJS.Timeout | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;
  let sweeping = false;
  let stopped = false;
  let failing = false;
  let everReady = false;
  const gate = new JudgeGate();
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

  // The coalescing slack is the sweep interval: a device is reported offline at most two sweep
  // intervals after its true deadline (plus the time to process the claim).
  // Status changes are claimed in one call per event-loop turn; every other command sends the
  // claims waiting before it, so Redis sees claims and touches in the order the hub made them.
  const claims = new ClaimQueue((args) => commands.vigilClaims(...keys, hubId, ...args));
  const inOrder = () => claims.flush();
  const queue = new TouchQueue(
    (args) => {
      inOrder();
      return commands.vigilTouch(...keys, ...args);
    },
    noteSuccess,
    noteFailure,
    onFlushFault,
    Date.now,
    opts.sweepMs,
  );
  const flush = () => queue.flush();

  function report(id: string, lastSeen: string | undefined, deadline: string | undefined): void {
    queue.forgetWritten(id);
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
    if (sweeping || stopped || !gate.open) return;
    sweeping = true;
    try {
      await flush(); // touches heard before this sweep reach Redis before anything is claimed
      inOrder();
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
    if (!gate.open) return; // the first sweep once judging claims it
    const id = key.slice(prefix.length);
    try {
      inOrder();
      const claimed = await commands.vigilClaimOne(...keys, id, Date.now(), hubId, LATE_EXPIRY_MS);
      if (claimed) report(id, claimed[0], claimed[1]);
    } catch (error) {
      noteFailure(error as Error); // the sweep will claim it
    }
  }

  function onAnnouncement(message: string): void {
    const change = parseAnnouncement(message, hubId);
    if (change === null) return;
    if (change.status === 'offline') queue.forgetWritten(change.deviceId);
    try {
      listener?.onRemoteTransition?.(change);
    } catch (error) {
      faults.report('presence', error, { op: 'remote-transition' });
    }
  }

  return {
    kind: 'redis',
    async start(l, judgeAfter) {
      listener = l;
      gate.wait(judgeAfter, () => void sweep());
      try {
        await commands.connect();
        await subscriber.connect();
      } catch (error) {
        commands.disconnect();
        subscriber.disconnect();
        throw new Error(`Redis at ${redactUrl(opts.url)} is not reachable: ${(error as Error).message}`);
      }
      await enableExpiryEvents(commands);
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
          queue.forgetAllWritten();
          enableExpiryEvents(commands).catch((error: Error) => noteFailure(error));
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
      queue.touch(deviceId, at, timeoutMs);
    },
    claim(change) {
      if (change.status === 'offline') {
        queue.drop(change.deviceId);
      }
      return claims.claim(change);
    },
    lastSeen(deviceIds) {
      inOrder();
      return lastSeenInChunks(deviceIds, prefix, (chunk) => commands.mget(chunk));
    },
    health(): PresenceHealth {
      if (commands.status !== 'ready') return { ok: false, detail: `redis ${commands.status}${lastError ? `: ${lastError}` : ''}` };
      if (failing) return { ok: false, detail: `redis commands failing: ${lastError}` };
      return { ok: true, detail: `redis, ${queue.trackedDevices} devices tracked by this hub` };
    },
    async stop() {
      stopped = true;
      if (flushTimer !== null) clearInterval(flushTimer);
      if (sweepTimer !== null) clearInterval(sweepTimer);
      if (commands.status === 'ready') {
        inOrder();
        await flush().catch(onFlushFault);
      }
      listener = null;
      await Promise.allSettled([commands.quit(), subscriber.quit()]);
    },
  };
}
