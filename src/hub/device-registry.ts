import { blankState, type DeviceState, type RestoredDevice } from '../domain/device-state.js';
import type { DeviceStatus } from '../domain/device-status.js';
import { SortedIds } from './sorted-ids.js';

/** Why a device the hub has not seen before was not registered. */
export type Refusal = 'device_limit' | 'new_device_rate';

/** MAX_DEVICES, and new devices per second (a token bucket: `newPerS` sustained, `burst` at once). */
export interface DeviceLimits {
  readonly maxDevices: number;
  readonly newPerS: number;
  readonly burst: number;
}

/**
 * In-memory registry of devices, bounded: at most `maxDevices`, and new ones admitted at most
 * `newPerS` a second, so random device ids cannot grow the hub without end. A known device pays one
 * Map lookup; the cap, the bucket and the sorted index are touched only for a new id. Status counts
 * are kept as devices change, so fleet totals never need a scan.
 */
export class DeviceRegistry {
  private readonly devices = new Map<string, DeviceState>();
  private readonly sorted = new SortedIds();
  private onlineCount = 0;
  private offlineCount = 0;
  private tokens: number;
  private tokensAt: number;
  /** Messages from new devices refused since start, by reason (added to /metrics before each scrape). */
  readonly refused: Record<Refusal, number> = { device_limit: 0, new_device_rate: 0 };

  constructor(
    readonly limits: DeviceLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = limits.burst;
    this.tokensAt = now();
  }

  get size(): number {
    return this.devices.size;
  }

  get online(): number {
    return this.onlineCount;
  }

  /** The whole registry's counts by status, kept as devices change (no scan). */
  totals(): { total: number; online: number; offline: number; unknown: number } {
    const total = this.devices.size;
    return { total, online: this.onlineCount, offline: this.offlineCount, unknown: total - this.onlineCount - this.offlineCount };
  }

  get(id: string): DeviceState | undefined {
    return this.devices.get(id);
  }

  /**
   * A device that speaks (MQTT, `POST /status`, a cluster forward to its owner, new settings):
   * its state, created if there is room and the new-device rate allows it; else why not (counted).
   */
  admit(id: string): DeviceState | Refusal {
    const state = this.devices.get(id);
    if (state !== undefined) return state;
    if (this.devices.size >= this.limits.maxDevices) return this.refuse('device_limit', 1);
    const now = this.now();
    this.tokens = Math.min(this.limits.burst, this.tokens + ((now - this.tokensAt) / 1000) * this.limits.newPerS);
    this.tokensAt = now;
    if (this.tokens < 1) return this.refuse('new_device_rate', 1);
    this.tokens--;
    return this.create(id);
  }

  /**
   * A device admitted elsewhere (stored before a restart, another instance's transition, a command or
   * alert of it): only the cap applies, as those were rate-limited where they came in.
   */
  adopt(id: string): DeviceState | Refusal {
    const state = this.devices.get(id);
    if (state !== undefined) return state;
    if (this.devices.size >= this.limits.maxDevices) return this.refuse('device_limit', 1);
    return this.create(id);
  }

  /** A device read back from storage at start (its status counted); false: the registry is full. */
  restore(stored: RestoredDevice): boolean {
    const state = this.adopt(stored.id);
    if (typeof state === 'string') return false;
    state.lastSeen = stored.lastSeen;
    state.telemetry = stored.lastTelemetry;
    state.timeoutMs = stored.offlineTimeoutS === null ? null : stored.offlineTimeoutS * 1000;
    state.type = stored.type;
    state.name = stored.name;
    if (stored.status === 'online' || stored.status === 'offline') this.setStatus(state, stored.status);
    return true;
  }

  /** Counts further messages refused for a reason already decided (messages parked behind the first). */
  refuse(reason: Refusal, messages: number): Refusal {
    this.refused[reason] += messages;
    return reason;
  }

  private create(id: string): DeviceState {
    const state = blankState(id);
    this.devices.set(id, state);
    this.sorted.add(id);
    return state;
  }

  setStatus(state: DeviceState, status: DeviceStatus): void {
    if (state.status === 'online') this.onlineCount--;
    else if (state.status === 'offline') this.offlineCount--;
    if (status === 'online') this.onlineCount++;
    else this.offlineCount++;
    state.status = status;
  }

  /**
   * Records a transition and says whether the device is flapping: `max` transitions within
   * `windowMs`. O(1) per transition. A transition more than `windowMs` after the one before leaves
   * every earlier one out of the window, so the ring of `max` times is kept only while transitions
   * follow each other within it (a device that changed status once keeps one number).
   */
  recordTransition(state: DeviceState, at: number, max: number, windowMs: number): boolean {
    const previous = state.lastTransitionAt;
    state.lastTransitionAt = at;
    if (at - previous > windowMs) {
      state.transitions = null;
      state.flapping = false;
      return false;
    }
    if (state.transitions === null) {
      state.transitions = new Array<number>(max).fill(-Infinity);
      state.transitions[0] = previous;
      state.transitionCursor = 1 % max;
    }
    const ring = state.transitions;
    ring[state.transitionCursor] = at;
    state.transitionCursor = (state.transitionCursor + 1) % ring.length;
    // The slot after the newest holds the oldest of the last `max` transitions.
    state.flapping = at - ring[state.transitionCursor]! <= windowMs;
    return state.flapping;
  }

  delete(id: string): boolean {
    const state = this.devices.get(id);
    if (state === undefined) return false;
    if (state.status === 'online') this.onlineCount--;
    else if (state.status === 'offline') this.offlineCount--;
    this.sorted.delete(id);
    return this.devices.delete(id);
  }

  values(): IterableIterator<DeviceState> {
    return this.devices.values();
  }

  /** Known ids in sorted order after `after` ('' from the first): the order pages walk. */
  idsAfter(after: string): Generator<string, void, undefined> {
    return this.sorted.after(after);
  }

  /** Known ids in sorted order from position `offset`. */
  idsFrom(offset: number): Generator<string, void, undefined> {
    return this.sorted.fromOffset(offset);
  }
}
