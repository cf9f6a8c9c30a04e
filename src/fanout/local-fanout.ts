import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { withFleetSeq, type Fanout, type LocalDelivery } from './fanout.js';
import type { DropReason } from './frame-window.js';
import { MemoryHistory } from './memory-history.js';

const HISTORY_SWEEP_MS = 10_000;
const ALL = '*';

/** Resume windows (HISTORY_* and FLEET_HISTORY_* settings), the same for both fan-outs. */
export interface HistorySettings {
  readonly windowMs: number;
  readonly maxBytesPerDevice: number;
  readonly ttlMs: number;
  readonly fleetWindowMs: number;
  readonly fleetMaxBytes: number;
  /** The clock frames are timed by (tests pass their own). */
  readonly now?: () => number;
  /** Frames pushed out of a window, by scope and reason (vigil_history_dropped_frames_total). */
  readonly dropped?: (scope: 'device' | 'fleet', reason: DropReason, n: number) => void;
  /** Bytes kept in memory, by scope, after each sweep (vigil_history_bytes; in-process history only). */
  readonly kept?: (scope: 'device' | 'fleet', bytes: number) => void;
  /** Where a history sweep's failure is reported (the error boundary of its timer); thrown when absent. */
  readonly fault?: (error: unknown) => void;
}

export function historySettings(config: Config, metrics: Metrics): HistorySettings {
  // A sample from the start, also where the frames are kept in Redis instead (0 in this process).
  for (const scope of ['device', 'fleet'] as const) metrics.historyBytes.set({ scope }, 0);
  return {
    windowMs: config.HISTORY_WINDOW_S * 1000,
    maxBytesPerDevice: config.HISTORY_MAX_BYTES_PER_DEVICE,
    ttlMs: config.HISTORY_TTL_S * 1000,
    fleetWindowMs: config.FLEET_HISTORY_WINDOW_S * 1000,
    fleetMaxBytes: config.FLEET_HISTORY_MAX_BYTES,
    dropped: (scope, reason, n) => metrics.historyDropped.inc({ scope, reason }, n),
    kept: (scope, bytes) => metrics.historyBytes.set({ scope }, bytes),
  };
}

/** Single-instance fan-out: every frame goes straight to this process's clients; history in memory. */
export function createLocalFanout(opts: HistorySettings): Fanout & { readonly history: MemoryHistory; readonly fleetHistory: MemoryHistory } {
  const now = opts.now ?? Date.now;
  let local: LocalDelivery | null = null;
  const dropped = opts.dropped;
  const history = new MemoryHistory({
    windowMs: opts.windowMs,
    maxBytes: opts.maxBytesPerDevice,
    ttlMs: opts.ttlMs,
    ...(dropped ? { dropped: (reason: DropReason, n: number) => dropped('device', reason, n) } : {}),
    ...(opts.fault ? { fault: opts.fault } : {}),
  });
  const fleetHistory = new MemoryHistory({
    windowMs: opts.fleetWindowMs,
    maxBytes: opts.fleetMaxBytes,
    ttlMs: opts.ttlMs,
    ...(dropped ? { dropped: (reason: DropReason, n: number) => dropped('fleet', reason, n) } : {}),
    ...(opts.fault ? { fault: opts.fault } : {}),
  });
  let fleetSeq = 0;
  // Most devices have no follower at a given moment: for them a frame goes nowhere, not even into uWS.
  const followers = new Map<string, number>();
  const sweeper = setInterval(() => {
    try {
      history.sweep(now());
      fleetHistory.sweep(now());
      opts.kept?.('device', history.bytes);
      opts.kept?.('fleet', fleetHistory.bytes);
    } catch (error) {
      if (opts.fault === undefined) throw error;
      opts.fault(error);
    }
  }, HISTORY_SWEEP_MS);
  sweeper.unref();
  return {
    kind: 'local',
    // A restarted hub numbers from scratch: its clients must not resume across it.
    epoch: randomBytes(6).toString('base64url'),
    history,
    fleetHistory,
    async start(delivery) {
      local = delivery;
    },
    toDevice(deviceId, seq, frame, key) {
      history.record(deviceId, seq, frame, now());
      if (followers.has(deviceId)) local?.toDevice(deviceId, frame, key);
    },
    // `*` frames are built while the fleet feed is followed or its history kept: its numbering
    // then covers every fleet event; before a history began, `from` refuses resuming.
    wants: (channel) => followers.has(channel) || (channel === ALL ? fleetHistory.keeps(ALL) : history.keeps(channel)),
    toAll(frame, key) {
      const n = ++fleetSeq;
      const followed = followers.has(ALL);
      if (!followed && !fleetHistory.keeps(ALL)) return;
      const numbered = withFleetSeq(frame, n);
      fleetHistory.record(ALL, n, numbered, now());
      if (followed) local?.toAll(numbered, key);
    },
    async follow(channel) {
      followers.set(channel, (followers.get(channel) ?? 0) + 1);
      if (channel === ALL) fleetHistory.follow(ALL, fleetSeq);
      else history.follow(channel, 0);
    },
    unfollow(channel) {
      const count = (followers.get(channel) ?? 0) - 1;
      if (count > 0) followers.set(channel, count);
      else followers.delete(channel);
      (channel === ALL ? fleetHistory : history).unfollow(channel, now());
    },
    recover: (deviceId, sinceSeq, currentSeq) => history.recover(deviceId, sinceSeq, currentSeq, now()),
    recoverFleet(since) {
      if (since === null) return { fleetSeq, frames: [] };
      const recovery = fleetHistory.recover(ALL, since, fleetSeq, now());
      return { fleetSeq, frames: recovery.recovered ? recovery.frames : null };
    },
    settled: () => null,
    async stop() {
      clearInterval(sweeper);
      local = null;
    },
  };
}
