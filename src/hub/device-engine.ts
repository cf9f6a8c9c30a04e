import type { DeviceState } from '../domain/device-state.js';
import type { Telemetry } from '../domain/telemetry.js';
import type { DeviceRegistry } from './device-registry.js';
import type { FleetSummaries } from './fleet-summary.js';
import type { FramePublisher } from './frame-publisher.js';
import type { Insights } from './insights.js';
import type { OfflineTimeout, OfflineTimeouts } from './offline-timeouts.js';
import type { Outlets } from './outlets.js';
import type { PresenceTracker } from './presence-tracker.js';

export interface DeviceEngineDeps {
  readonly registry: DeviceRegistry;
  readonly presence: Pick<PresenceTracker, 'heard' | 'changeStatus' | 'release' | 'retime'>;
  readonly publisher: FramePublisher;
  readonly timeouts: OfflineTimeouts;
  readonly insights: Pick<Insights, 'onTelemetry' | 'forget'>;
  readonly summaries: Pick<FleetSummaries, 'touch' | 'removedDevice'>;
  readonly outlets: Pick<Outlets, 'observer'>;
  /** Cluster mode: whether this instance owns a device. */
  readonly owns: (deviceId: string) => boolean;
}

/**
 * What devices say (readings, heartbeats, their own status word) applied to their state, and
 * devices forgotten. A message from a device the registry refuses (full, or too many new ones a
 * second) changes nothing: each entry answers false then.
 *
 * `ingestTelemetry` is the hot path: synchronous, no logging, nothing allocated but the frame (and
 * that only when the device has followers).
 */
export class DeviceEngine {
  /**
   * True while the broker hands over what it queued during the hub's absence (set at start): a
   * queued reading was heard when the device sent it, so its own earlier time counts for presence
   * rather than the receipt time (docs/presence.md). Live readings use the receipt time.
   */
  readingBacklog = false;

  // The hot path's collaborators as own fields: one property load each per message, not two.
  private readonly registry: DeviceRegistry;
  private readonly presence: DeviceEngineDeps['presence'];
  private readonly publisher: FramePublisher;
  private readonly summaries: DeviceEngineDeps['summaries'];
  private readonly insights: DeviceEngineDeps['insights'];
  private readonly readingsSeen: ((state: DeviceState, t: Telemetry) => void) | null;

  constructor(private readonly deps: DeviceEngineDeps) {
    this.registry = deps.registry;
    this.presence = deps.presence;
    this.publisher = deps.publisher;
    this.summaries = deps.summaries;
    this.insights = deps.insights;
    this.readingsSeen = deps.outlets.observer?.readingsSeen ?? null;
  }

  /** One validated telemetry message: presence, newest state, one frame to its followers, storage. */
  ingestTelemetry(t: Telemetry): boolean {
    const state = this.registry.admit(t.deviceId);
    if (typeof state === 'string') return false;
    this.presence.heard(state, this.readingBacklog && t.ts < t.receivedAt ? t.ts : t.receivedAt, 'telemetry');
    if (state.telemetry === null || t.ts >= state.telemetry.ts) {
      state.telemetry = t;
      // Home Assistant's battery and RSSI follow the newest reading (throttled where they are published).
      if (this.readingsSeen !== null && (t.batteryLevel !== null || t.rssi !== null)) this.readingsSeen(state, t);
    }
    this.publisher.deviceUpdate(state, t);
    this.summaries.touch(state.id);
    this.insights.onTelemetry(state, t, t.receivedAt);
    return true;
  }

  heartbeat(deviceId: string, at: number): boolean {
    const state = this.deps.registry.admit(deviceId);
    if (typeof state === 'string') return false;
    this.deps.presence.heard(state, at, 'heartbeat');
    return true;
  }

  /**
   * A device's own word on `devices/{id}/status` or an availability input (its Last Will, or
   * `online` when it returns). `retained`: the broker's stored copy, delivered at every subscription
   * (each start and reconnection), so an `online` there is the device's last word, not a sign of
   * life: it brings online only a device whose status is unknown, or one its availability input
   * holds (that input's word is the device's presence, docs/presence.md#holding-devices-online).
   * A retained `offline` is still the device's last word and counts as any.
   */
  deviceSaid(deviceId: string, online: boolean, at: number, retained = false): boolean {
    const state = this.deps.registry.admit(deviceId);
    if (typeof state === 'string') return false;
    const { presence } = this.deps;
    if (!online) {
      if (state.status !== 'offline') presence.changeStatus(state, 'offline', 'last_will', at);
    } else if (!retained || state.status === 'unknown') presence.heard(state, at, 'heartbeat');
    else if (this.deps.timeouts.isHeld(deviceId)) {
      // Held: its deadline is the hold's; its last seen stays when it was last heard from.
      if (state.status !== 'online') presence.changeStatus(state, 'online', 'heartbeat', at);
      presence.retime(state);
    }
    return true;
  }

  /**
   * An availability input that holds its devices online (MQTT_AVAILABILITY_HOLD) said `online`
   * (`held`) or `offline`: marked for every device on the stream, before the cluster routes the
   * message, so whichever instance owns the device later holds it too. A device this instance
   * has online moves to the hold's deadline (or back to its timeout).
   */
  availabilityHold(deviceId: string, held: boolean): void {
    if (!this.deps.timeouts.hold(deviceId, held)) return;
    const state = this.deps.registry.get(deviceId);
    if (state !== undefined && this.deps.owns(deviceId)) this.deps.presence.retime(state);
  }

  /** A device deleted by an admin: forgotten here (its presence claimed offline so nothing fires). */
  forget(deviceId: string): void {
    const { registry, summaries } = this.deps;
    const owned = this.deps.owns(deviceId);
    if (owned) this.deps.outlets.observer?.forgotten(deviceId);
    const state = registry.get(deviceId);
    if (state === undefined) return;
    this.deps.presence.release(state);
    this.insights.forget(state, Date.now(), owned);
    registry.delete(deviceId);
    this.deps.timeouts.forget(deviceId);
    summaries.removedDevice(deviceId);
  }

  /** A known device's offline timeout in force and where it comes from (device, type, learned, default). */
  timeoutOf(deviceId: string): OfflineTimeout | null {
    const state = this.deps.registry.get(deviceId);
    return state === undefined ? null : this.deps.timeouts.describe(state);
  }
}
