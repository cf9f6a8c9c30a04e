import { randomUUID } from 'node:crypto';

export interface MassOfflineOptions {
  readonly minDevices: number;
  /** Share of the devices online before the wave. */
  readonly share: number;
  readonly windowMs: number;
}

export interface IncidentVerdict {
  readonly id: string;
  readonly transition: 'raised' | 'cleared';
  readonly devices: number;
  readonly raisedAt: number;
  readonly windowMs: number;
  /** Up to 20 device ids, for the alert's data. */
  readonly sample: readonly string[];
}

/** Share of an incident's devices back online at which it clears. */
const CLEAR_SHARE = 0.8;

/**
 * Tells a fleet-wide offline wave (the broker, Redis or the hub itself was away, or a site lost
 * power) from devices failing one by one: when at least `minDevices`, and `share` of the devices
 * that were online, go offline within `windowMs`, it is one incident. Devices covered by it raise
 * no offline alert of their own; it clears when most of them are back.
 */
export class MassOfflineGuard {
  private readonly recent: { id: string; at: number }[] = [];
  private incident: { id: string; raisedAt: number; devices: Set<string>; back: number } | null = null;

  constructor(private readonly opts: MassOfflineOptions) {}

  readonly covers = (deviceId: string): boolean => this.incident?.devices.has(deviceId) ?? false;

  note(deviceId: string, status: 'online' | 'offline', at: number, onlineNow: number): IncidentVerdict | null {
    const incident = this.incident;
    if (status === 'online') {
      if (incident === null || !incident.devices.has(deviceId)) return null;
      if (++incident.back < incident.devices.size * CLEAR_SHARE) return null;
      this.incident = null;
      return this.verdict(incident.id, 'cleared', incident.raisedAt, incident.devices);
    }
    if (incident !== null) {
      incident.devices.add(deviceId);
      return null;
    }
    this.recent.push({ id: deviceId, at });
    while (this.recent.length > 0 && this.recent[0]!.at < at - this.opts.windowMs) this.recent.shift();
    const count = this.recent.length;
    if (count < this.opts.minDevices || count < this.opts.share * (onlineNow + count)) return null;
    const devices = new Set(this.recent.map((r) => r.id));
    this.recent.length = 0;
    this.incident = { id: randomUUID(), raisedAt: at, devices, back: 0 };
    return this.verdict(this.incident.id, 'raised', at, devices);
  }

  private verdict(id: string, transition: 'raised' | 'cleared', raisedAt: number, devices: Set<string>): IncidentVerdict {
    return { id, transition, devices: devices.size, raisedAt, windowMs: this.opts.windowMs, sample: [...devices].slice(0, 20) };
  }
}
