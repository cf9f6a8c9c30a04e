import { IntervalLearner, type LearnedTimeoutSettings } from '../domain/learned-timeout.js';
import type { DeviceState } from '../domain/device-state.js';

/** Where a device's offline timeout comes from, in the order they win. */
export type TimeoutSource = 'held' | 'device' | 'type' | 'learned' | 'default';

/**
 * The "timeout" of a device an availability input holds online (MQTT_AVAILABILITY_HOLD): no
 * silence ends it, only the input's `offline`. A year, renewed by each message, keeps it a finite
 * deadline every presence store can hold.
 */
export const HELD_MS = 365 * 86_400_000;

/** A device's offline timeout in force and where it comes from. */
export interface OfflineTimeout {
  readonly ms: number;
  readonly source: TimeoutSource;
}

/**
 * A device's offline timeout: none while an availability input holds it online (its source said
 * `online` and has not said `offline` since: MQTT_AVAILABILITY_HOLD), else its own setting
 * (`PUT /devices/{id}`), else its type's (DEVICE_TYPE_TIMEOUTS), else — with LEARNED_TIMEOUTS —
 * the one learned from its reporting intervals, else OFFLINE_TIMEOUT_S. What an operator set
 * explicitly always beats what is learned.
 */
export class OfflineTimeouts {
  private readonly learners = new Map<string, IntervalLearner>();
  /**
   * Devices held online, by id: kept for every device on the stream (not only the ones this
   * instance owns), so a new owner in a cluster holds them too; at most `maxHeld`.
   */
  private readonly held = new Set<string>();
  private readonly scratch: Float64Array;

  constructor(
    private readonly defaultMs: number,
    private readonly typeMs: ReadonlyMap<string, number> | undefined,
    private readonly learned: LearnedTimeoutSettings | null,
    private readonly maxHeld = 1_000_000,
  ) {
    this.scratch = new Float64Array(learned?.samples ?? 0);
  }

  /**
   * The device is heard from at `at` (before `lastSeen` and its status move): one interval for its
   * learner. A silence the hub judged an outage (the device is offline now) counts only as long as
   * the timeout that ended it: a real outage then cannot stretch the timeout past factor × the
   * timeout, while a device that really reports more slowly than its timeout still raises it, by up
   * to the factor each time, until its intervals fit.
   */
  heard(state: DeviceState, at: number): void {
    if (this.learned === null || state.lastSeen === null || at <= state.lastSeen) return;
    let learner = this.learners.get(state.id);
    if (learner === undefined) this.learners.set(state.id, (learner = new IntervalLearner(this.learned)));
    const interval = at - state.lastSeen;
    learner.observe(state.status === 'offline' ? Math.min(interval, this.of(state)) : interval, this.scratch);
  }

  forget(deviceId: string): void {
    this.learners.delete(deviceId);
    this.held.delete(deviceId);
  }

  /** An availability input that holds said `online` (true) or `offline` (false); true when that changed anything. */
  hold(deviceId: string, held: boolean): boolean {
    if (!held) return this.held.delete(deviceId);
    if (this.held.has(deviceId) || this.held.size >= this.maxHeld) return false;
    this.held.add(deviceId);
    return true;
  }

  isHeld(deviceId: string): boolean {
    return this.held.size !== 0 && this.held.has(deviceId);
  }

  of(state: DeviceState): number {
    if (this.held.size !== 0 && this.held.has(state.id)) return HELD_MS;
    if (state.timeoutMs !== null) return state.timeoutMs;
    const byType = state.type === null ? undefined : this.typeMs?.get(state.type);
    if (byType !== undefined) return byType;
    if (this.learned === null) return this.defaultMs;
    const learner = this.learners.get(state.id);
    if (learner === undefined) return this.defaultMs;
    return learner.timeoutMs ?? Math.max(this.defaultMs, learner.warmupFloorMs);
  }

  describe(state: DeviceState): OfflineTimeout {
    return { ms: this.of(state), source: this.sourceOf(state) };
  }

  sourceOf(state: DeviceState): TimeoutSource {
    if (this.isHeld(state.id)) return 'held';
    if (state.timeoutMs !== null) return 'device';
    if (state.type !== null && this.typeMs?.has(state.type)) return 'type';
    const learner = this.learned === null ? undefined : this.learners.get(state.id);
    if (learner !== undefined && (learner.timeoutMs !== null || learner.warmupFloorMs > this.defaultMs)) return 'learned';
    return 'default';
  }
}
