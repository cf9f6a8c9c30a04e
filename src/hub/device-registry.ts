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
  /** Per-device offline timeout override in ms (null: the configured default). */
  timeoutMs: number | null;
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
      state = { id, status: 'unknown', lastSeen: null, telemetry: null, seq: 0, timeoutMs: null };
      this.devices.set(id, state);
    }
    return state;
  }

  setStatus(state: DeviceState, status: DeviceStatus): void {
    if (state.status === 'online') this.onlineCount--;
    if (status === 'online') this.onlineCount++;
    state.status = status;
  }

  values(): IterableIterator<DeviceState> {
    return this.devices.values();
  }
}
