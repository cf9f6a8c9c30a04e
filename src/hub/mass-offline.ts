import { createHash } from 'node:crypto';
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
  /** The devices it covers by name. */
  readonly devices: Set<string>;
  readonly returned: Set<string>;
  /** Adopted from a stored incident: devices it counted as back, not named here (0 otherwise). */
  readonly returnedBefore: number;
  /** When a device last joined (or it was raised): past `windowMs` of quiet it takes no more joiners. */
  lastJoinAt: number;
}

/** What a stored incident says of itself (its row's data), for an instance that starts while it is open. */
export interface StoredIncident {
  readonly id: string;
  readonly raisedAt: number;
  readonly returned: number;
}

/**
 * The id of the incident a wave raises, from its earliest device and the MASS_OFFLINE_WINDOW_S slot
 * in which that device went offline. Every instance sees the same transitions, each judged a few ms
 * apart, so each derives the same id and a new owner of `*` goes on updating the same alert (unless
 * the earliest offline falls within those ms of a slot's edge: then the new owner's updates carry
 * another id; docs/health-and-alerts.md). UUID-shaped (version nibble 5, name-based).
 */
export function incidentId(firstDevice: string, slot: number): string {
  const h = createHash('sha256').update(`mass_offline|${firstDevice}|${slot}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((Number.parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Tells a fleet-wide offline wave (the broker, Redis or the hub itself was away, or a site lost
 * power) from devices failing one by one: when at least `minDevices`, and `share` of the devices
 * that were online, go offline within `windowMs`, it is one incident. Devices that go offline while
 * the wave goes on (each within `windowMs` of the last to join) join it (an `updated` verdict: its
 * count grows) and raise no offline alert of their own; after `windowMs` without a joiner the wave
 * is over, and a device failing later is judged on its own (its own alert), unless a new wave forms,
 * which joins the incident still open. It clears when most of its devices are back, saying how many
 * returned.
 */
export class MassOfflineGuard {
  private readonly recent: { id: string; at: number }[] = [];
  private incident: Incident | null = null;

  constructor(private readonly opts: MassOfflineOptions) {}

  readonly covers = (deviceId: string): boolean => this.incident?.devices.has(deviceId) ?? false;

  /** The open incident's id (null: none). */
  get openId(): string | null {
    return this.incident?.id ?? null;
  }

  note(deviceId: string, status: 'online' | 'offline', at: number, onlineNow: number): IncidentVerdict | null {
    const incident = this.incident;
    if (status === 'online') {
      if (incident === null || !incident.devices.has(deviceId) || incident.returned.has(deviceId)) return null;
      incident.returned.add(deviceId);
      if (incident.returnedBefore + incident.returned.size < (incident.returnedBefore + incident.devices.size) * CLEAR_SHARE) return null;
      this.incident = null;
      return this.verdict(incident, 'cleared');
    }
    if (incident !== null) {
      // Down again after it came back: no longer counted as returned.
      if (incident.returned.delete(deviceId) || incident.devices.has(deviceId)) return null;
      // Still the same wave: the incident grows.
      if (at - incident.lastJoinAt <= this.opts.windowMs) {
        incident.devices.add(deviceId);
        incident.lastJoinAt = at;
        return this.verdict(incident, 'updated');
      }
    }
    this.recent.push({ id: deviceId, at });
    while (this.recent.length > 0 && this.recent[0]!.at < at - this.opts.windowMs) this.recent.shift();
    const count = this.recent.length;
    if (count < this.opts.minDevices || count < this.opts.share * (onlineNow + count)) return null;
    // The wave's earliest offline (ties: the smaller id), not the first noted here: instances note
    // their own claims before the others', so the order differs, the earliest does not.
    let first = this.recent[0]!;
    for (const r of this.recent) if (r.at < first.at || (r.at === first.at && r.id < first.id)) first = r;
    const wave = this.recent.map((r) => r.id);
    this.recent.length = 0;
    if (incident !== null) {
      // A new wave while the last one's incident is still open: the same outage, grown again.
      for (const id of wave) incident.devices.add(id);
      incident.lastJoinAt = at;
      return this.verdict(incident, 'updated');
    }
    this.incident = { id: incidentId(first.id, Math.floor(first.at / this.opts.windowMs)), raisedAt: at, devices: new Set(wave), returned: new Set(), returnedBefore: 0, lastJoinAt: at };
    return this.verdict(this.incident, 'raised');
  }

  /**
   * Takes over an incident stored as open (this instance started while other instances kept it):
   * `members` are the devices it is taken to cover (offline now, gone since it began), those it
   * counted as back stay counted. Takes no joiners until a new wave.
   */
  adopt(stored: StoredIncident, members: Iterable<string>, at: number): void {
    const devices = new Set<string>(members);
    this.incident = { id: stored.id, raisedAt: stored.raisedAt, devices, returned: new Set(), returnedBefore: stored.returned, lastJoinAt: at - this.opts.windowMs - 1 };
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
      devices: incident.returnedBefore + incident.devices.size,
      returned: incident.returnedBefore + incident.returned.size,
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
