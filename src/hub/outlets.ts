import type { ScoredHealth } from '../domain/alert.js';
import type { DeviceState } from '../domain/device-state.js';
import type { StatusChange } from '../domain/device-status.js';

/** Told what the owner of a device announces (the MQTT availability publisher, mqtt-availability.ts). */
export interface DeviceObserver {
  statusAnnounced(state: DeviceState, change: StatusChange): void;
  healthScored(state: DeviceState, health: ScoredHealth): void;
  forgotten(deviceId: string): void;
}

/**
 * What the hub tells over MQTT, wired only once the MQTT client exists (after the hub): each part
 * reads it at the moment it has something to say, so null means "not yet" and nothing is sent.
 */
export interface Outlets {
  /** Sends a command to `{prefix}/{id}/commands`. */
  commandPublisher: ((deviceId: string, payload: string) => void) | null;
  /** Publishes availability (and Home Assistant state) per device. */
  observer: DeviceObserver | null;
}
