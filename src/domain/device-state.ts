import type { DeviceStatus } from './device-status.js';
import type { Telemetry } from './telemetry.js';

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
  /** When the device last changed status (-Infinity: never), for flap detection. */
  lastTransitionAt: number;
  /**
   * Times of the last transitions for flap detection: a ring made only while transitions come
   * within the flap window of each other, dropped after a quiet window (most devices never need one).
   */
  transitions: number[] | null;
  transitionCursor: number;
  flapping: boolean;
}

/** A state not (yet) in any registry. */
export function blankState(id: string): DeviceState {
  return {
    id,
    status: 'unknown',
    lastSeen: null,
    telemetry: null,
    seq: 0,
    syncedVersion: -1,
    timeoutMs: null,
    type: null,
    name: null,
    lastTransitionAt: -Infinity,
    transitions: null,
    transitionCursor: 0,
    flapping: false,
  };
}

/** What storage keeps of a device between runs (the registry is rebuilt from it at start). */
export interface RestoredDevice {
  readonly id: string;
  readonly type: string | null;
  readonly name: string | null;
  readonly status: DeviceStatus | 'unknown';
  readonly lastSeen: number | null;
  readonly offlineTimeoutS: number | null;
  readonly lastTelemetry: Telemetry | null;
}
