import { randomUUID } from 'node:crypto';
import type { Alert } from '../domain/alert.js';
import { ALL_CHANNEL } from './frame-publisher.js';

export interface MassOfflineOptions {
  readonly minDevices: number;
  /** Share of the devices online before the wave. */
  readonly share: number;
  readonly windowMs: number;
}

export interface IncidentVerdict {
  readonly id: string;
  /** `updated`: more devices joined the open incident. */
  readonly transition: 'raised' | 'updated' | 'cleared';
  /** Devices the incident covers (every device that went offline while it was open). */
  readonly devices: number;
  /** How many of them are back online. */
  readonly returned: number;
  readonly raisedAt: number;
  readonly windowMs: number;
  /** Up to 20 device ids (the first to go), for the alert's data. */
  readonly sample: readonly string[];
}

/** Share of an incident's devices back online at which it clears. */
const CLEAR_SHARE = 0.8;
const SAMPLE_SIZE = 20;

interface Incident {
  readonly id: string;
  readonly raisedAt: number;
  readonly devices: Set<string>;
  readonly returned: Set<string>;
}

/**
 * Tells a fleet-wide offline wave (the broker, Redis or the hub itself was away, or a site lost
 * power) from devices failing one by one: when at least `minDevices`, and `share` of the devices
 * that were online, go offline within `windowMs`, it is one incident. Devices that go offline
 * while it is open join it (an `updated` verdict: its count grows); devices covered by it raise no
 * offline alert of their own; it clears when most of them are back, saying how many returned.
 */
export class MassOfflineGuard {
  private readonly recent: { id: string; at: number }[] = [];
  private incident: Incident | null = null;

  constructor(private readonly opts: MassOfflineOptions) {}

  readonly covers = (deviceId: string): boolean => this.incident?.devices.has(deviceId) ?? false;

  note(deviceId: string, status: 'online' | 'offline', at: number, onlineNow: number): IncidentVerdict | null {
    const incident = this.incident;
    if (status === 'online') {
      if (incident === null || !incident.devices.has(deviceId) || incident.returned.has(deviceId)) return null;
      incident.returned.add(deviceId);
      if (incident.returned.size < incident.devices.size * CLEAR_SHARE) return null;
      this.incident = null;
      return this.verdict(incident, 'cleared');
    }
    if (incident !== null) {
      // Down again after it came back: no longer counted as returned. A new device: the incident grows.
      if (incident.returned.delete(deviceId) || incident.devices.has(deviceId)) return null;
      incident.devices.add(deviceId);
      return this.verdict(incident, 'updated');
    }
    this.recent.push({ id: deviceId, at });
    while (this.recent.length > 0 && this.recent[0]!.at < at - this.opts.windowMs) this.recent.shift();
    const count = this.recent.length;
    if (count < this.opts.minDevices || count < this.opts.share * (onlineNow + count)) return null;
    const devices = new Set(this.recent.map((r) => r.id));
    this.recent.length = 0;
    this.incident = { id: randomUUID(), raisedAt: at, devices, returned: new Set() };
    return this.verdict(this.incident, 'raised');
  }

  private verdict(incident: Incident, transition: IncidentVerdict['transition']): IncidentVerdict {
    const sample: string[] = [];
    for (const id of incident.devices) {
      if (sample.length === SAMPLE_SIZE) break;
      sample.push(id);
    }
    return {
      id: incident.id,
      transition,
      devices: incident.devices.size,
      returned: incident.returned.size,
      raisedAt: incident.raisedAt,
      windowMs: this.opts.windowMs,
      sample,
    };
  }
}

/** The fleet's `mass_offline` alert (on the `*` channel) as of a verdict; `at` is the transition that caused it. */
export function incidentAlert(verdict: IncidentVerdict, at: number): Alert {
  const cleared = verdict.transition === 'cleared';
  return {
    id: verdict.id,
    deviceId: ALL_CHANNEL,
    type: 'mass_offline',
    severity: 'critical',
    state: cleared ? 'cleared' : 'raised',
    data: { devices: verdict.devices, returned: verdict.returned, window_s: verdict.windowMs / 1000, sample: verdict.sample },
    raisedAt: verdict.raisedAt,
    updatedAt: at,
    clearedAt: cleared ? at : null,
    acknowledgedAt: null,
    acknowledgedBy: null,
  };
}
