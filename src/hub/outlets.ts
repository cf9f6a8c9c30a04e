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
 * What the hub tells over MQTT, given at construction (the MQTT connection is created before the
 * hub, compose/mqtt.ts): null means there is no broker to tell (tests) or availability is off.
 */
export interface Outlets {
  /** Sends a command to `{prefix}/{id}/commands`. */
  readonly commandPublisher: ((deviceId: string, payload: string) => void) | null;
  /** Publishes availability (and Home Assistant state) per device. */
  readonly observer: DeviceObserver | null;
}
