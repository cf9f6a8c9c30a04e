import { randomBytes } from 'node:crypto';
import type { Fanout, LocalDelivery } from './fanout.js';
import { MemoryHistory } from './memory-history.js';

const HISTORY_SWEEP_MS = 10_000;

/** Single-instance fan-out: every frame goes straight to this process's clients; history in memory. */
export function createLocalFanout(opts: { historySize: number; historyTtlMs: number }): Fanout & { readonly history: MemoryHistory } {
  let local: LocalDelivery | null = null;
  const history = new MemoryHistory(opts.historySize, opts.historyTtlMs);
  // Most devices have no follower at a given moment: for them a frame goes nowhere, not even into uWS.
  const followers = new Map<string, number>();
  const sweeper = setInterval(() => history.sweep(Date.now()), HISTORY_SWEEP_MS);
  sweeper.unref();
  return {
    kind: 'local',
    // A restarted hub numbers from scratch: its clients must not resume across it.
    epoch: randomBytes(6).toString('base64url'),
    history,
    async start(delivery) {
      local = delivery;
    },
    toDevice(deviceId, seq, frame, key) {
      history.record(deviceId, seq, frame);
      if (followers.has(deviceId)) local?.toDevice(deviceId, frame, key);
    },
    wants: (channel) => followers.has(channel) || history.keeps(channel),
    toAll(frame, key) {
      if (followers.has('*')) local?.toAll(frame, key);
    },
    async follow(channel) {
      followers.set(channel, (followers.get(channel) ?? 0) + 1);
      history.follow(channel);
    },
    unfollow(channel) {
      const count = (followers.get(channel) ?? 0) - 1;
      if (count > 0) followers.set(channel, count);
      else followers.delete(channel);
      history.unfollow(channel, Date.now());
    },
    recover: (deviceId, sinceSeq, currentSeq) => history.recover(deviceId, sinceSeq, currentSeq),
    async stop() {
      clearInterval(sweeper);
      local = null;
    },
  };
}
