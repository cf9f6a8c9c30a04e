import type { DeviceState } from '../domain/device-state.js';
import type { DeviceStatus, StatusChange, TransitionReason } from '../domain/device-status.js';
import type { Faults } from '../errors/boundary.js';
import type { Metrics } from '../metrics.js';
import { LATE_EXPIRY_MS } from '../presence/late-expiry.js';
import type { PresenceListener, PresenceStore } from '../presence/presence-store.js';
import type { CommandService } from './commands.js';
import type { DeviceRegistry } from './device-registry.js';
import type { FleetSummaries } from './fleet-summary.js';
import { ALL_CHANNEL, type FramePublisher } from './frame-publisher.js';
import type { Insights } from './insights.js';
import type { Alert } from '../domain/alert.js';
import { incidentAlert, MassOfflineGuard, type MassOfflineOptions } from './mass-offline.js';
import type { OfflineTimeouts } from './offline-timeouts.js';
import type { Outlets } from './outlets.js';

/** A device held by a start-up grace: its last_seen then, and whether this hub claimed its expiry in the store. */
interface HeldDevice {
  readonly state: DeviceState;
  readonly lastSeen: number | null;
  readonly claimed: boolean;
}

/** A device with `transitions` status changes within `windowMs` is flagged as flapping (FLAP_*). */
export interface FlapSettings {
  readonly transitions: number;
  readonly windowMs: number;
}

export interface PresenceTrackerDeps {
  readonly registry: DeviceRegistry;
  readonly store: PresenceStore;
  readonly timeouts: OfflineTimeouts;
  readonly insights: Pick<Insights, 'beforeStatusChange' | 'afterStatusChange'>;
  readonly commands: Pick<CommandService, 'deviceOnline'>;
  readonly publisher: FramePublisher;
  readonly summaries: Pick<FleetSummaries, 'touch'>;
  readonly outlets: Pick<Outlets, 'observer'>;
  readonly metrics: Metrics;
  readonly faults: Faults;
  /** Cluster mode: whether this instance owns a device (it numbers and publishes its frames). */
  readonly owns: (deviceId: string) => boolean;
  readonly now: () => number;
  readonly flap: FlapSettings;
  readonly massOffline: MassOfflineOptions;
}

/**
 * Whether each device is online: moves it on what it says and on expiries from the presence store,
 * claims each transition in the store (so several hubs report it once), announces it and watches
 * the transitions for a fleet-wide offline wave (one mass-offline incident, not an alert per device).
 */
export class PresenceTracker implements PresenceListener {
  private readonly massOffline: MassOfflineGuard;

  constructor(private readonly deps: PresenceTrackerDeps) {
    this.massOffline = new MassOfflineGuard(deps.massOffline);
  }

  /** Whether a device went offline in the open mass-offline incident (it raises no offline alert of its own). */
  readonly inIncident = (deviceId: string): boolean => this.massOffline.covers(deviceId);

  /** The device was heard from at `at`: its deadline moves, and it comes online if it was not. */
  heard(state: DeviceState, at: number, reason: TransitionReason): void {
    const timeouts = this.deps.timeouts;
    timeouts.heard(state, at);
    if (state.lastSeen === null || at > state.lastSeen) state.lastSeen = at;
    this.deps.store.touch(state.id, at, timeouts.of(state));
    if (state.status !== 'online') this.changeStatus(state, 'online', reason, at);
  }

  /** A device being forgotten: its presence is claimed offline, so no expiry fires for it. */
  release(state: DeviceState): void {
    this.claimQuietly(this.statusChange(state, 'offline', 'reconcile', this.deps.now()));
  }

  /** The device's timeout or type changed: its current deadline moves with it. */
  retime(state: DeviceState): void {
    if (state.status === 'online' && state.lastSeen !== null) {
      this.deps.store.touch(state.id, state.lastSeen, this.deps.timeouts.of(state));
    }
  }

  /** This hub claimed the device's expiry in the presence store. */
  onExpired(deviceId: string, lastSeen: number, deadline: number): void {
    const { registry, timeouts } = this.deps;
    const state = registry.adopt(deviceId);
    if (typeof state === 'string') return; // registry full: the device stays unknown here
    if (state.lastSeen === null || state.lastSeen < lastSeen) state.lastSeen = lastSeen;
    const at = this.deps.now();
    if (state.status === 'offline') {
      // This hub won the expiry, yet its registry already says offline: its own claim for the same
      // outage (the reconcile at start) is still on its way and will lose to this one, which the
      // store made exclusive (an offline claim removes the deadline). Report the outage here, once.
      const change: StatusChange = { deviceId, status: 'offline', previous: 'online', reason: 'reconcile', lastSeen: state.lastSeen, at };
      this.announce(state, change, true);
      return;
    }
    if (state.lastSeen + timeouts.of(state) > at) {
      // Heard from after the store wrote its deadline (a touch still on its way): not expired.
      // Re-arm, and take the online status back for any hub that saw the expiry.
      this.deps.store.touch(state.id, state.lastSeen, timeouts.of(state));
      this.claimQuietly(this.statusChange(state, 'online', 'heartbeat', at));
      return;
    }
    // Expired while no instance of the cluster ran: held for the start-up grace.
    if (this.grace !== null && deadline < this.grace.since && this.hold(state, true)) return;
    // Measured from the true deadline: the store's own may include its coalescing slack.
    const lag = Math.max(0, at - Math.min(deadline, state.lastSeen + timeouts.of(state)));
    this.deps.metrics.expiryLag.observe(lag / 1000);
    const change = this.statusChange(state, 'offline', lag > LATE_EXPIRY_MS ? 'reconcile' : 'timeout', at);
    this.deps.insights.beforeStatusChange(state, at);
    registry.setStatus(state, 'offline');
    this.announce(state, change, true);
  }

  /** Another hub claimed a transition: mirror it for this hub's clients (it stored it already). */
  onRemoteTransition(change: StatusChange): void {
    const state = this.deps.registry.adopt(change.deviceId);
    if (typeof state === 'string') return;
    if (change.lastSeen !== null && (state.lastSeen === null || state.lastSeen < change.lastSeen)) state.lastSeen = change.lastSeen;
    this.deps.insights.beforeStatusChange(state, change.at);
    this.deps.registry.setStatus(state, change.status);
    this.announce(state, change, false);
  }

  /** The presence store came back after an outage: re-check every device this hub holds online. */
  onReconnected(): void {
    this.reconcile().catch(this.deps.faults.catcher('reconcile'));
  }

  /**
   * A device recorded online whose presence is gone keeps the rest of its timeout if it was heard
   * from recently, and otherwise goes offline as `reconcile` (not observed live). Used at start
   * and after the presence store comes back. During a start-up grace (`beginGrace`) such a device
   * is held instead, and judged when the grace ends.
   */
  async reconcile(): Promise<{ checked: number; offline: number; held: number }> {
    const { registry, store, timeouts } = this.deps;
    const online = [...registry.values()].filter((s) => s.status === 'online');
    if (online.length === 0) return { checked: 0, offline: 0, held: 0 };
    const seen = await store.lastSeen(online.map((s) => s.id));
    const now = this.deps.now();
    let offline = 0;
    let held = 0;
    online.forEach((state, i) => {
      if (seen[i] !== null && seen[i] !== undefined) return;
      const lastSeen = state.lastSeen ?? 0;
      if (lastSeen + timeouts.of(state) > now) store.touch(state.id, lastSeen, timeouts.of(state));
      else if (state.status === 'online') {
        if (this.hold(state, false)) held++;
        else {
          this.changeStatus(state, 'offline', 'reconcile', now);
          offline++;
        }
      }
    });
    return { checked: online.length, offline, held };
  }

  /** Devices whose presence ran out while no instance of the cluster ran, judged when the grace ends. */
  private grace: { readonly since: number; readonly until: number; readonly held: Map<string, HeldDevice>; timer: NodeJS.Timeout | null } | null = null;

  /**
   * A cluster's first live member starts (nobody kept presence, and clean sessions queued nothing):
   * for `graceMs`, a device whose presence ran out before now is not judged offline but held; when
   * the grace ends, one heard from meanwhile stays online (no transition at all) and one still
   * silent goes offline as `reconcile`, with its true last_seen (docs/presence.md).
   */
  beginGrace(graceMs: number): void {
    if (graceMs <= 0) return;
    const since = this.deps.now();
    const timer = setTimeout(this.deps.faults.guard('reconcile', () => this.endGrace(true)), graceMs);
    timer.unref();
    this.grace = { since, until: since + graceMs, held: new Map(), timer };
  }

  /** The grace ends: at its time (`judge`), or as the hub stops (held devices are judged at the next start). */
  endGrace(judge = false): void {
    const grace = this.grace;
    if (grace === null) return;
    this.grace = null;
    if (grace.timer !== null) clearTimeout(grace.timer);
    if (!judge) return;
    const { registry, store, timeouts } = this.deps;
    for (const { state, lastSeen, claimed } of grace.held.values()) {
      if (registry.get(state.id) !== state || state.status !== 'online') continue;
      const at = this.deps.now();
      if (state.lastSeen !== lastSeen) {
        // Heard during the grace: it never went offline. An expiry this hub claimed is taken back.
        if (claimed) {
          store.touch(state.id, state.lastSeen!, timeouts.of(state));
          this.claimQuietly(this.statusChange(state, 'online', 'heartbeat', at));
        }
        continue;
      }
      if (!claimed) {
        this.changeStatus(state, 'offline', 'reconcile', at);
        continue;
      }
      // Its expiry was claimed (exclusively) at start: report that outage now.
      const change = this.statusChange(state, 'offline', 'reconcile', at);
      this.deps.insights.beforeStatusChange(state, at);
      registry.setStatus(state, 'offline');
      this.announce(state, change, true);
    }
  }

  /** During a start-up grace: holds a device whose presence ran out before it; false when there is none. */
  private hold(state: DeviceState, claimed: boolean): boolean {
    const grace = this.grace;
    if (grace === null || this.deps.now() >= grace.until) return false;
    // Held by the reconcile and then its expiry claimed by the sweep (or the reverse): one entry, claimed.
    const prior = grace.held.get(state.id);
    grace.held.set(state.id, { state, lastSeen: prior === undefined ? state.lastSeen : prior.lastSeen, claimed: claimed || (prior?.claimed ?? false) });
    return true;
  }

  /**
   * Applies a transition at once (later messages see the new status) and reports it if this hub
   * wins the claim; a hub that loses hears it from the winner as a remote transition. When the
   * store cannot answer (Redis away) the hub reports it itself: availability over deduplication.
   */
  changeStatus(state: DeviceState, status: DeviceStatus, reason: TransitionReason, at: number): void {
    const change = this.statusChange(state, status, reason, at);
    this.deps.insights.beforeStatusChange(state, at);
    this.deps.registry.setStatus(state, status);
    const claimed = this.deps.store.claim(change);
    if (claimed === true) this.announce(state, change, true);
    else if (claimed !== false) {
      claimed
        .then(
          (won) => won && this.announce(state, change, true),
          () => this.announce(state, change, true),
        )
        .catch(this.deps.faults.catcher('presence', { op: 'announce' }));
    }
  }

  /**
   * A claim whose outcome changes nothing here (the registry already moved on): its failure (the
   * presence store away) is still reported, never left to end the process as an unhandled rejection.
   */
  private claimQuietly(change: StatusChange): void {
    const claimed = this.deps.store.claim(change);
    if (claimed instanceof Promise) claimed.catch(this.deps.faults.catcher('presence', { op: 'claim', status: change.status }));
  }

  private statusChange(state: DeviceState, status: DeviceStatus, reason: TransitionReason, at: number): StatusChange {
    const previous = state.status === 'unknown' ? null : state.status;
    return { deviceId: state.id, status, previous, reason, lastSeen: state.lastSeen, at };
  }

  /**
   * Numbers the change on the device's channel and pushes it if this instance owns the device (in
   * a cluster the owner publishes, whichever instance claimed it), and stores it if `store` (this
   * instance won the claim).
   */
  private announce(state: DeviceState, change: StatusChange, store: boolean): void {
    const { flap, publisher } = this.deps;
    this.deps.registry.recordTransition(state, change.at, flap.transitions, flap.windowMs);
    this.deps.summaries.touch(state.id);
    if (this.deps.owns(state.id)) {
      publisher.statusChange(state, change);
      this.deps.insights.afterStatusChange(state, change.at);
      if (change.status === 'online') this.deps.commands.deviceOnline(state.id);
      this.deps.outlets.observer?.statusAnnounced(state, change);
    }
    if (store) publisher.storeStatusChange(change);
    this.watchForIncident(state, change);
  }

  /**
   * A mass-offline incident stored as open when this instance started. Alone (one instance, or the
   * first live member of a cluster), nobody watched the fleet while it was down: the incident ends
   * here, `cleared` with `"ended":"restart"` (its counts as stored), and devices still offline are
   * judged one by one from now. Joining live instances: it is adopted (the `*` owner may move here),
   * covering the devices offline now that were last heard after its wave could have begun.
   */
  restoreIncident(stored: Alert, alone: boolean): void {
    const at = this.deps.now();
    const data = stored.data;
    const returned = typeof data.returned === 'number' ? data.returned : 0;
    if (alone) {
      const ended: Alert = { ...stored, state: 'cleared', data: { ...data, ended: 'restart' }, updatedAt: at, clearedAt: at };
      this.deps.publisher.fleetAlert(ended, 'cleared', at);
      return;
    }
    const { registry, timeouts } = this.deps;
    const windowMs = this.deps.massOffline.windowMs;
    const members: string[] = [];
    for (const state of registry.values()) {
      if (state.status === 'offline' && state.lastSeen !== null && state.lastSeen >= stored.raisedAt - windowMs - timeouts.of(state)) members.push(state.id);
    }
    this.massOffline.adopt({ id: stored.id, raisedAt: stored.raisedAt, returned }, members, at);
  }

  /** Mass offline: one incident (on the `*` channel and stored as an alert) instead of an alert per device. */
  private watchForIncident(state: DeviceState, change: StatusChange): void {
    const verdict = this.massOffline.note(state.id, change.status, change.at, this.deps.registry.online);
    // Every instance sees every transition; the owner of `*` speaks for the fleet.
    if (verdict === null || !this.deps.owns(ALL_CHANNEL)) return;
    this.deps.publisher.fleetAlert(incidentAlert(verdict, change.at), verdict.transition, change.at);
    if (verdict.transition === 'raised') this.deps.metrics.massOfflineIncidents.inc();
  }
}
