import type { StatusChange } from '../domain/device-status.js';

/**
 * Where the hub keeps "this device was heard from recently" with a deadline, and who gets to
 * report a device's transitions. Two implementations pass one contract suite
 * (tests/contracts/presence.contract.ts): `memory` (deadline heap, one process) and `redis`
 * (SET … PX per device, a sorted set of deadlines swept on an interval, keyspace expiry events,
 * atomic claims so several hubs on one Redis report each transition once).
 *
 * Rules every implementation keeps:
 * - `touch` never blocks the caller and never throws; I/O is batched or pipelined behind it.
 * - Once a device's deadline has passed without a newer touch, exactly one hub gets `onExpired`
 *   for it, never before the deadline and at most about a second after it.
 * - A touch that arrives before the expiry is reported cancels it.
 * - A transition claimed by one hub reaches the others' listeners as `onRemoteTransition`.
 */
export interface PresenceStore {
  readonly kind: 'memory' | 'redis';
  /**
   * Starts reporting to `listener`. With `judgeAfter`, no expiry is judged before it settles (the
   * broker's backlog is read first, docs/presence.md); touches and claims work meanwhile, and a
   * deadline that passed in between is judged at once then, with its true last-seen time.
   */
  start(listener: PresenceListener, judgeAfter?: Promise<unknown>): Promise<void>;
  /** The device was heard from at `at` (epoch ms) and is present until `at + timeoutMs`. */
  touch(deviceId: string, at: number, timeoutMs: number): void;
  /**
   * Claims the device's change to online (or to offline, for a Last Will or a reconcile, which
   * also forgets its presence). True when this hub won and must report and store the change;
   * a synchronous answer lets a single-process store keep the change ahead of the message's update.
   */
  claim(change: StatusChange): boolean | Promise<boolean>;
  /** For each id, the epoch ms it was last heard from, or null when it is not present. */
  lastSeen(deviceIds: readonly string[]): Promise<(number | null)[]>;
  /** Cheap reachability check for /readyz. */
  health(): PresenceHealth;
  stop(): Promise<void>;
}

export interface PresenceListener {
  /** This hub claimed the device's expiry: `lastSeen` is its last recorded touch, `deadline` when it ran out. */
  onExpired(deviceId: string, lastSeen: number, deadline: number): void;
  /** Another hub claimed and reported a transition (several hubs on one Redis). */
  onRemoteTransition?(change: StatusChange): void;
  /** The store lost and regained its backend (events may have been missed): reconcile. */
  onReconnected?(): void;
}

export interface PresenceHealth {
  readonly ok: boolean;
  readonly detail: string;
}
