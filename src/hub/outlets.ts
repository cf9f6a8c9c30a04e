import type { ScoredHealth } from '../domain/alert.js';
import type { DeviceState } from '../domain/device-state.js';
import type { StatusChange } from '../domain/device-status.js';
import type { Telemetry } from '../domain/telemetry.js';

/** Told what the owner of a device announces (the MQTT availability publisher, mqtt-availability.ts). */
export interface DeviceObserver {
  statusAnnounced(state: DeviceState, change: StatusChange): void;
  healthScored(state: DeviceState, health: ScoredHealth): void;
  forgotten(deviceId: string): void;
  /**
   * The device's newest reading carries a battery level or an rssi (its owner, per message: keep
   * it cheap); absent or null when the observer does not watch readings (the hot path then pays
   * one field load).
   */
  readonly readingsSeen?: ((state: DeviceState, t: Telemetry) => void) | null;
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
