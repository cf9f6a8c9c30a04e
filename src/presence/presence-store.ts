/**
 * Where the hub keeps "this device was heard from recently" with a deadline. Two implementations
 * pass one contract suite (tests/contracts/presence.contract.ts): `memory` (deadline heap, one
 * process) and `redis` (SET … PX per device, a sorted set of deadlines, keyspace expiry events).
 *
 * Rules every implementation keeps:
 * - `touch` never blocks the caller and never throws; I/O is batched or pipelined behind it.
 * - Once a device's deadline has passed without a newer touch, `onExpired` is called for it once,
 *   no later than the sweep interval after the deadline (expiry events alone can be late).
 * - A touch that arrives before the expiry is reported cancels it.
 * - `remove` forgets a device at once and reports no expiry for it.
 */
export interface PresenceStore {
  readonly kind: 'memory' | 'redis';
  start(listener: PresenceListener): Promise<void>;
  /** The device was heard from at `now` (epoch ms) and is present until `now + timeoutMs`. */
  touch(deviceId: string, now: number, timeoutMs: number): void;
  /** The device said goodbye (Last Will): forget it without reporting an expiry. */
  remove(deviceId: string): void;
  /** For each id, the epoch ms it was last heard from, or null when it is not present. */
  lastSeen(deviceIds: readonly string[]): Promise<(number | null)[]>;
  /** Every device currently present, with its last-seen time (used to reconcile at start). */
  present(): Promise<Map<string, number>>;
  /** Cheap reachability check for /readyz. */
  health(): PresenceHealth;
  stop(): Promise<void>;
}

export interface PresenceListener {
  /** The device's deadline passed; `lastSeen` is its last touch, `deadline` when it ran out. */
  onExpired(deviceId: string, lastSeen: number, deadline: number): void;
  /** The store lost and regained its backend: the caller should reconcile. */
  onReconnected?(): void;
}

export interface PresenceHealth {
  readonly ok: boolean;
  readonly detail: string;
}
