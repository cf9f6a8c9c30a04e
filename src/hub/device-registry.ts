import type { DeviceStatus } from '../domain/device-status.js';
import type { Telemetry } from '../domain/telemetry.js';

/** What the hub knows of one device right now; the source of every snapshot. */
export interface DeviceState {
  readonly id: string;
  status: DeviceStatus | 'unknown';
  lastSeen: number | null;
  /** Newest telemetry by device timestamp (an older message arriving late does not replace it). */
  telemetry: Telemetry | null;
  /** Per-device sequence number of the frames on its channel; a gap tells a client it missed one. */
  seq: number;
  /** Cluster mode: the membership version at which `seq` was last read back from Redis (-1: never). */
  syncedVersion: number;
  /** Per-device offline timeout override in ms (null: by type, else the configured default). */
  timeoutMs: number | null;
  type: string | null;
  name: string | null;
  /** Times of the last transitions (a ring, allocated at the first one) for flap detection. */
  transitions: number[] | null;
  transitionCursor: number;
  flapping: boolean;
}

/** In-memory registry of devices, bounded by the fleet size (one small object per device). */
export class DeviceRegistry {
  private readonly devices = new Map<string, DeviceState>();
  private onlineCount = 0;

  get size(): number {
    return this.devices.size;
  }

  get online(): number {
    return this.onlineCount;
  }

  get(id: string): DeviceState | undefined {
    return this.devices.get(id);
  }

  getOrCreate(id: string): DeviceState {
    let state = this.devices.get(id);
    if (state === undefined) {
      state = {
        id,
        status: 'unknown',
        lastSeen: null,
        telemetry: null,
        seq: 0,
        syncedVersion: -1,
        timeoutMs: null,
        type: null,
        name: null,
        transitions: null,
        transitionCursor: 0,
        flapping: false,
      };
      this.devices.set(id, state);
    }
    return state;
  }

  setStatus(state: DeviceState, status: DeviceStatus): void {
    if (state.status === 'online') this.onlineCount--;
    if (status === 'online') this.onlineCount++;
    state.status = status;
  }

  /**
   * Records a transition and says whether the device is flapping: `max` transitions within
   * `windowMs`. O(1) per transition, `max` numbers per device that ever changed status.
   */
  recordTransition(state: DeviceState, at: number, max: number, windowMs: number): boolean {
    if (state.transitions === null) state.transitions = new Array<number>(max).fill(-Infinity);
    const ring = state.transitions;
    ring[state.transitionCursor] = at;
    state.transitionCursor = (state.transitionCursor + 1) % ring.length;
    // The slot after the newest holds the oldest of the last `max` transitions.
    state.flapping = at - ring[state.transitionCursor]! <= windowMs;
    return state.flapping;
  }

  delete(id: string): boolean {
    const state = this.devices.get(id);
    if (state?.status === 'online') this.onlineCount--;
    return this.devices.delete(id);
  }

  values(): IterableIterator<DeviceState> {
    return this.devices.values();
  }
}
