import type { DeviceStatus, StatusChange, TransitionReason } from '../domain/device-status.js';
import type { Telemetry } from '../domain/telemetry.js';
import { seqOf, type Fanout, type FleetRecovery, type Recovery } from '../fanout/fanout.js';
import type { Faults } from '../errors/boundary.js';
import type { Metrics } from '../metrics.js';
import { LATE_EXPIRY_MS } from '../presence/late-expiry.js';
import type { PresenceListener, PresenceStore } from '../presence/presence-store.js';
import { DeviceRegistry, type DeviceLimits } from './device-registry.js';
import { CommandService } from './commands.js';
import { alertFrame, commandUpdateFrame, deviceUpdateFrame, healthScoreFrame, snapshotFrame, statusChangeFrame } from './frames.js';
import { CommandViews } from './command-views.js';
import { DeviceViews } from './device-views.js';
import { MassOfflineGuard } from './mass-offline.js';
import { createOwnerApi, type ClusterPort, type HubOwnerApi } from '../cluster/owner-api/index.js';
import { hubOperations } from './hub-operations.js';
import { FleetSummaries } from './fleet-summary.js';
import { Insights, type InsightOptions, type InsightSink } from './insights.js';
import { DEFAULT_RULE_SET } from '../domain/compiled-rules.js';
import type { LearnedTimeoutSettings } from '../domain/learned-timeout.js';
import { OfflineTimeouts, type TimeoutSource } from './offline-timeouts.js';
import { blankState, type DeviceState } from '../domain/device-state.js';
import type { Command, CommandRequest } from '../domain/command.js';
import { alertData, commandData } from '../domain/representations.js';
import type { Alert, AlertTransition, ScoredHealth } from '../domain/alert.js';
import type { EventSink } from '../domain/event-sink.js';

/** Told what the owner of a device announces (the MQTT availability publisher, mqtt-availability.ts). */
export interface DeviceObserver {
  statusAnnounced(state: DeviceState, change: StatusChange): void;
  healthScored(state: DeviceState, health: ScoredHealth): void;
  forgotten(deviceId: string): void;
}

export interface HubOptions {
  readonly fanout: Fanout;
  readonly presence: PresenceStore;
  readonly sink: EventSink;
  readonly metrics: Metrics;
  /** Where faults of work nobody awaits (presence claims, timers, reconciles) are reported. */
  readonly faults: Faults;
  readonly defaultTimeoutMs: number;
  /** Offline timeouts by device type, in ms (a device's own override wins). */
  readonly typeTimeoutsMs?: ReadonlyMap<string, number>;
  /** LEARNED_TIMEOUTS: each device's timeout learned from its reporting intervals (null: off). */
  readonly learnedTimeouts?: LearnedTimeoutSettings | null;
  /** A device with `transitions` status changes within `windowMs` is flagged as flapping. */
  readonly flap?: { readonly transitions: number; readonly windowMs: number };
  readonly insights?: Partial<Omit<InsightOptions, 'timeoutMsOf'>>;
  readonly now?: () => number;
  /** Cluster mode: who owns each device (it numbers and publishes its frames) and how to ask it. */
  readonly cluster?: ClusterPort;
  /** An offline wave at least this large, and this share of the devices online, is one incident. */
  readonly massOffline?: { readonly minDevices: number; readonly share: number; readonly windowMs: number };
  /** How many devices the registry holds and how fast new ones are admitted (MAX_DEVICES, MAX_NEW_DEVICES_*). */
  readonly deviceLimits: DeviceLimits;
}

/** What a subscriber gets first: a snapshot, or (resuming) the frames it missed; `seq` is the last included. */
export interface Prepared {
  readonly recovered: boolean | null;
  readonly frames: readonly string[];
  readonly seq: number;
}

/** A submitted command as the API shows it, and whether this request created it (idempotency). */
export interface SubmittedCommand {
  readonly command: ReturnType<typeof commandData>;
  readonly created: boolean;
}

export interface ResumeFrom {
  readonly sinceSeq: number;
  readonly epoch: string;
}

const DEFAULT_INSIGHTS: Omit<InsightOptions, 'timeoutMsOf'> = {
  weights: { availability: 30, battery: 20, signal: 15, error_rate: 15, response_time: 10, freshness: 10 },
  step: 1,
  minScoreIntervalMs: 1000,
  rules: DEFAULT_RULE_SET,
  zscoreMetrics: [],
  zscoreThreshold: 4,
  offlineAlertMs: 5 * 60_000,
};

const DEFAULT_FLAP = { transitions: 6, windowMs: 300_000 };

/** Channel names are the uWS topics; `*` carries every device's status, health and alert frames. */
export const ALL_CHANNEL = '*';

/**
 * The hub's core: applies telemetry and presence events to the device registry, numbers them per
 * device and hands each frame to the fan-out once. Everything here is synchronous, so a snapshot
 * taken inside a subscribe handler and the stream after it can neither overlap nor leave a gap.
 */
export class Hub implements PresenceListener, InsightSink {
  readonly registry: DeviceRegistry;
  readonly insights: Insights;
  readonly commands: CommandService;
  /** Set once the MQTT client exists: sends a command to `{prefix}/{id}/commands`. */
  commandPublisher: ((deviceId: string, payload: string) => void) | null = null;
  /** Set once the MQTT client exists: publishes availability (and Home Assistant state) per device. */
  observer: DeviceObserver | null = null;
  /**
   * True while the broker hands over what it queued during the hub's absence (set at start): a
   * queued reading was heard when the device sent it, so its own earlier time counts for presence
   * rather than the receipt time (docs/presence.md). Live readings use the receipt time.
   */
  readingBacklog = false;
  private readonly now: () => number;
  private readonly owns: (deviceId: string) => boolean;
  private readonly massOffline: MassOfflineGuard;
  /** Typed calls answered by the instance holding a device (all of them here, unless clustered). */
  readonly owner: HubOwnerApi;
  readonly views: DeviceViews;
  readonly commandViews: CommandViews;
  private readonly timeouts: OfflineTimeouts;
  /** The live fleet table (`subscribe_all` with `summaries`): devices marked here, sent once an interval. */
  readonly summaries: FleetSummaries;

  constructor(private readonly opts: HubOptions) {
    this.now = opts.now ?? Date.now;
    this.timeouts = new OfflineTimeouts(opts.defaultTimeoutMs, opts.typeTimeoutsMs, opts.learnedTimeouts ?? null);
    this.registry = new DeviceRegistry(opts.deviceLimits, this.now);
    this.owns = opts.cluster ? (deviceId) => opts.cluster!.owns(deviceId) : () => true;
    this.owner = createOwnerApi(opts.cluster, opts.metrics);
    this.massOffline = new MassOfflineGuard(opts.massOffline ?? { minDevices: 20, share: 0.3, windowMs: 10_000 });
    this.commands = new CommandService(
      {
        publish: (deviceId, payload) => this.commandPublisher?.(deviceId, payload),
        isOnline: (deviceId) => this.registry.get(deviceId)?.status === 'online' && this.commandPublisher !== null,
        changed: (command) => this.commandChanged(command),
        fault: opts.faults.catcher('commands'),
      },
      this.now,
    );
    this.insights = new Insights({ ...DEFAULT_INSIGHTS, ...opts.insights, timeoutMsOf: (state) => this.timeoutMsOf(state) }, this);
    this.views = new DeviceViews(this);
    this.commandViews = new CommandViews(this);
    this.summaries = new FleetSummaries({ registry: this.registry, insights: this.insights, owns: this.owns, owner: this.owner, metrics: opts.metrics, faults: opts.faults, now: this.now });
    this.owner.serve(hubOperations(this, opts.fanout));
  }

  /**
   * One validated telemetry message: presence, newest state, one frame to its followers, storage.
   * False when it came from a new device the registry refused (full, or too many new ones a second):
   * then nothing is registered, stored or pushed.
   */
  ingestTelemetry(t: Telemetry): boolean {
    const state = this.registry.admit(t.deviceId);
    if (typeof state === 'string') return false;
    this.heard(state, this.readingBacklog && t.ts < t.receivedAt ? t.ts : t.receivedAt, 'telemetry');
    if (state.telemetry === null || t.ts >= state.telemetry.ts) state.telemetry = t;
    state.seq++;
    const fanout = this.opts.fanout;
    if (fanout.wants(state.id)) fanout.toDevice(state.id, state.seq, deviceUpdateFrame(state, t), 'u');
    this.opts.sink.enqueueTelemetry(t);
    this.summaries.touch(state.id);
    this.insights.onTelemetry(state, t, t.receivedAt);
    return true;
  }

  /** A device deleted by an admin: forgotten here (its presence claimed offline so nothing fires). */
  forget(deviceId: string): void {
    if (this.owns(deviceId)) this.observer?.forgotten(deviceId);
    const state = this.registry.get(deviceId);
    if (state === undefined) return;
    this.claimQuietly(this.statusChange(state, 'offline', 'reconcile', this.now()));
    this.registry.delete(deviceId);
    this.timeouts.forget(deviceId);
    this.summaries.removedDevice(deviceId);
  }

  countInvalid(reason: string): void {
    this.opts.metrics.invalidMessages.inc({ reason });
  }

  /** Changes when numbering restarts: a client's `seq` is only comparable within one epoch. */
  get epoch(): string {
    return this.opts.fanout.epoch;
  }

  /** Re-scores every device this instance owns (the periodic sweep) and raises due offline alerts. */
  sweep(): void {
    this.insights.sweep(this.ownedDevices(), this.now(), true, this.massOffline.covers);
  }

  /** Raises due offline alerts only (cheap, run often); devices in a mass-offline incident raise none. */
  sweepOffline(): void {
    this.insights.sweep(this.ownedDevices(), this.now(), false, this.massOffline.covers);
  }

  private *ownedDevices(): Iterable<DeviceState> {
    for (const state of this.registry.values()) if (this.owns(state.id)) yield state;
  }

  /**
   * Submits a command. The device's owner sends and tracks it (its acknowledgements reach the owner),
   * so on another instance this asks the owner.
   */
  submitCommand(deviceId: string, request: CommandRequest, idempotencyKey: string | null): SubmittedCommand | Promise<SubmittedCommand | null> {
    if (this.owner.isLocal(deviceId)) return this.submitHere(deviceId, request, idempotencyKey);
    return this.owner.submitCommand(deviceId, request, idempotencyKey).then((a) => (a.ok ? a.value : null));
  }

  private submitHere(deviceId: string, request: CommandRequest, idempotencyKey: string | null): SubmittedCommand {
    const { command, created } = this.commands.submit(deviceId, request, idempotencyKey);
    return { command: commandData(command), created };
  }

  /** A WebSocket client follows a channel (device id or `*`): frames from every instance come here. */
  follow(channel: string): Promise<void> {
    return this.opts.fanout.follow(channel);
  }

  unfollow(channel: string): void {
    this.opts.fanout.unfollow(channel);
  }

  /** Another instance numbered this device further (ownership moved): continue after its seq. */
  fenced(deviceId: string, storedSeq: number): void {
    const state = this.registry.get(deviceId);
    if (state !== undefined && state.seq < storedSeq) state.seq = storedSeq;
  }

  /**
   * What a new subscriber gets first. Synchronous when this instance numbers the device and can
   * answer at once (so nothing falls between it and the stream); otherwise a promise, once frames
   * from every instance reach this one (`followed`), of the missed frames or the owner's snapshot.
   */
  prepare(deviceId: string, resume: ResumeFrom | null, followed: Promise<void>): Prepared | Promise<Prepared> {
    const resumable = resume !== null && resume.epoch === this.epoch;
    if (this.opts.fanout.kind === 'local') {
      const seq = this.registry.get(deviceId)?.seq ?? 0;
      const recovery = resumable ? this.opts.fanout.recover(deviceId, resume.sinceSeq, seq) : null;
      if (recovery !== null && !(recovery instanceof Promise) && recovery.recovered) return { recovered: true, frames: recovery.frames, seq: recovery.seq };
      return { recovered: resume === null ? null : false, frames: [this.snapshot(deviceId)], seq };
    }
    return (async () => {
      await followed;
      if (resumable) {
        const recovery: Recovery = await this.opts.fanout.recover(deviceId, resume.sinceSeq, this.registry.get(deviceId)?.seq ?? 0);
        if (recovery.recovered) return { recovered: true, frames: recovery.frames, seq: recovery.seq };
      }
      const fromOwner = await this.owner.snapshot(deviceId);
      const frame = fromOwner.ok ? fromOwner.value : this.snapshot(deviceId); // owner silent: this instance's view
      return { recovered: resume === null ? null : false, frames: [frame], seq: seqOf(frame) };
    })();
  }

  /**
   * What a new follower of `*` gets first: the last fleet_seq it will not be sent live and, when
   * resuming within this epoch, the frames after `since` (null: not recovered). Synchronous on a
   * single instance; in a cluster once frames from every instance reach this one (`followed`).
   */
  prepareFleet(since: number | null, followed: Promise<void>): FleetRecovery | Promise<FleetRecovery> {
    const fanout = this.opts.fanout;
    if (fanout.kind === 'local') return fanout.recoverFleet(since) as FleetRecovery;
    return followed.then(() => fanout.recoverFleet(since));
  }

  /** A device deleted by an admin, forgotten by every instance. */
  async forgetEverywhere(id: string): Promise<void> {
    await this.owner.forget(id);
  }

  /**
   * Acknowledges an alert wherever it is held (the instance owning its device) once `may` allows its
   * device; null: not found. The device is asked for first, so the policy is applied at the entry.
   */
  async acknowledgeAlertAnywhere(alertId: string, by: string, may: (deviceId: string) => boolean): Promise<ReturnType<typeof alertData> | null | 'forbidden'> {
    const found = await this.owner.alertDevice(alertId);
    const deviceId = found.answers.find((a) => a !== null);
    if (deviceId === undefined) return null;
    if (!may(deviceId)) return 'forbidden';
    const { answers } = await this.owner.ackAlert(alertId, by);
    return answers.find((a) => a !== null) ?? null;
  }

  acknowledgeAlert(alertId: string, by: string): Alert | null {
    // An alert's device is known unless the registry was full when it was restored (or it is the
    // fleet's `*`): its frame is then numbered on a state of its own.
    return this.insights.acknowledge(alertId, by, this.now(), (id) => {
      const state = this.registry.adopt(id);
      return typeof state === 'string' ? blankState(id) : state;
    });
  }

  private commandChanged(command: Command): void {
    const state = this.registry.adopt(command.deviceId);
    this.opts.sink.enqueueCommand({ ...command });
    if (typeof state === 'string') return; // registry full: stored, but no channel to push it on
    state.seq++;
    this.opts.fanout.toDevice(state.id, state.seq, commandUpdateFrame(state.seq, command), `c:${command.id}`);
  }

  healthScore(state: DeviceState, health: ScoredHealth, previous: number | null): void {
    state.seq++;
    // Scores change about once a second per device: for a large fleet nobody watches, building
    // their frames would cost more than scoring them.
    const fanout = this.opts.fanout;
    const toDevice = fanout.wants(state.id);
    const toAll = fanout.wants(ALL_CHANNEL);
    if (toDevice || toAll) {
      const frame = healthScoreFrame(state.id, state.seq, health, previous);
      if (toDevice) fanout.toDevice(state.id, state.seq, frame, 'h');
      if (toAll) fanout.toAll(frame, `h:${state.id}`);
    }
    this.opts.sink.enqueueHealthScore(state.id, health);
    this.summaries.touch(state.id);
    this.observer?.healthScored(state, health);
  }

  alert(state: DeviceState, alert: Alert, transition: AlertTransition): void {
    state.seq++;
    const frame = alertFrame(state.seq, alert, transition, alert.updatedAt);
    this.opts.fanout.toDevice(state.id, state.seq, frame, `a:${alert.id}`);
    this.opts.fanout.toAll(frame, `a:${alert.id}`);
    this.opts.sink.enqueueAlert({ ...alert }, transition);
    this.summaries.touch(state.id);
    this.opts.metrics.alerts.inc({ transition, severity: alert.severity });
  }

  /** False: a new device refused (see ingestTelemetry). */
  heartbeat(deviceId: string, at: number): boolean {
    const state = this.registry.admit(deviceId);
    if (typeof state === 'string') return false;
    this.heard(state, at, 'heartbeat');
    return true;
  }

  /** A device's own word on `devices/{id}/status` (its Last Will, or `online` when it returns). */
  deviceSaid(deviceId: string, online: boolean, at: number): boolean {
    const state = this.registry.admit(deviceId);
    if (typeof state === 'string') return false;
    if (online) this.heard(state, at, 'heartbeat');
    else if (state.status !== 'offline') this.changeStatus(state, 'offline', 'last_will', at);
    return true;
  }

  /** This hub claimed the device's expiry in the presence store. */
  onExpired(deviceId: string, lastSeen: number, deadline: number): void {
    const state = this.registry.adopt(deviceId);
    if (typeof state === 'string') return; // registry full: the device stays unknown here
    if (state.lastSeen === null || state.lastSeen < lastSeen) state.lastSeen = lastSeen;
    const at = this.now();
    if (state.status === 'offline') {
      // This hub won the expiry, yet its registry already says offline: its own claim for the same
      // outage (the reconcile at start) is still on its way and will lose to this one, which the
      // store made exclusive (an offline claim removes the deadline). Report the outage here, once.
      const change: StatusChange = { deviceId, status: 'offline', previous: 'online', reason: 'reconcile', lastSeen: state.lastSeen, at };
      this.announce(state, change, true);
      return;
    }
    if (state.lastSeen + this.timeoutMsOf(state) > at) {
      // Heard from after the store wrote its deadline (a touch still on its way): not expired.
      // Re-arm, and take the online status back for any hub that saw the expiry.
      this.opts.presence.touch(state.id, state.lastSeen, this.timeoutMsOf(state));
      this.claimQuietly(this.statusChange(state, 'online', 'heartbeat', at));
      return;
    }
    // Measured from the true deadline: the store's own may include its coalescing slack.
    const lag = Math.max(0, at - Math.min(deadline, state.lastSeen + this.timeoutMsOf(state)));
    this.opts.metrics.expiryLag.observe(lag / 1000);
    const change = this.statusChange(state, 'offline', lag > LATE_EXPIRY_MS ? 'reconcile' : 'timeout', at);
    this.insights.beforeStatusChange(state, at);
    this.registry.setStatus(state, 'offline');
    this.announce(state, change, true);
  }

  /** Another hub claimed a transition: mirror it for this hub's clients (it stored it already). */
  onRemoteTransition(change: StatusChange): void {
    const state = this.registry.adopt(change.deviceId);
    if (typeof state === 'string') return;
    if (change.lastSeen !== null && (state.lastSeen === null || state.lastSeen < change.lastSeen)) state.lastSeen = change.lastSeen;
    this.insights.beforeStatusChange(state, change.at);
    this.registry.setStatus(state, change.status);
    this.announce(state, change, false);
  }

  /** The presence store came back after an outage: re-check every device this hub holds online. */
  onReconnected(): void {
    this.reconcile().catch(this.opts.faults.catcher('reconcile'));
  }

  /**
   * A device recorded online whose presence is gone keeps the rest of its timeout if it was heard
   * from recently, and otherwise goes offline as `reconcile` (not observed live). Used at start
   * and after the presence store comes back.
   */
  async reconcile(): Promise<{ checked: number; offline: number }> {
    const online = [...this.registry.values()].filter((s) => s.status === 'online');
    if (online.length === 0) return { checked: 0, offline: 0 };
    const seen = await this.opts.presence.lastSeen(online.map((s) => s.id));
    const now = this.now();
    let offline = 0;
    online.forEach((state, i) => {
      if (seen[i] !== null && seen[i] !== undefined) return;
      const lastSeen = state.lastSeen ?? 0;
      if (lastSeen + this.timeoutMsOf(state) > now) this.opts.presence.touch(state.id, lastSeen, this.timeoutMsOf(state));
      else if (state.status === 'online') {
        this.changeStatus(state, 'offline', 'reconcile', now);
        offline++;
      }
    });
    return { checked: online.length, offline };
  }

  snapshot(deviceId: string): string {
    return snapshotFrame(
      deviceId,
      this.registry.get(deviceId),
      this.epoch,
      this.now(),
      this.insights.health(deviceId),
      this.insights.activeAlerts(deviceId),
      this.timeoutOf(deviceId),
    );
  }

  timeoutMsOf(state: DeviceState): number {
    return this.timeouts.of(state);
  }

  /** A known device's offline timeout in force and where it comes from (device, type, learned, default). */
  timeoutOf(deviceId: string): { readonly ms: number; readonly source: TimeoutSource } | null {
    const state = this.registry.get(deviceId);
    return state === undefined ? null : { ms: this.timeouts.of(state), source: this.timeouts.sourceOf(state) };
  }

  /** The device's timeout or type changed: its current deadline moves with it. */
  retime(state: DeviceState): void {
    if (state.status === 'online' && state.lastSeen !== null) {
      this.opts.presence.touch(state.id, state.lastSeen, this.timeoutMsOf(state));
    }
  }

  private heard(state: DeviceState, at: number, reason: TransitionReason): void {
    this.timeouts.heard(state, at);
    if (state.lastSeen === null || at > state.lastSeen) state.lastSeen = at;
    this.opts.presence.touch(state.id, at, this.timeoutMsOf(state));
    if (state.status !== 'online') this.changeStatus(state, 'online', reason, at);
  }

  /**
   * Applies a transition at once (later messages see the new status) and reports it if this hub
   * wins the claim; a hub that loses hears it from the winner as a remote transition. When the
   * store cannot answer (Redis away) the hub reports it itself: availability over deduplication.
   */
  private changeStatus(state: DeviceState, status: DeviceStatus, reason: TransitionReason, at: number): void {
    const change = this.statusChange(state, status, reason, at);
    this.insights.beforeStatusChange(state, at);
    this.registry.setStatus(state, status);
    const claimed = this.opts.presence.claim(change);
    if (claimed === true) this.announce(state, change, true);
    else if (claimed !== false) {
      claimed
        .then(
          (won) => won && this.announce(state, change, true),
          () => this.announce(state, change, true),
        )
        .catch(this.opts.faults.catcher('presence', { op: 'announce' }));
    }
  }

  /**
   * A claim whose outcome changes nothing here (the registry already moved on): its failure (the
   * presence store away) is still reported, never left to end the process as an unhandled rejection.
   */
  private claimQuietly(change: StatusChange): void {
    const claimed = this.opts.presence.claim(change);
    if (claimed instanceof Promise) claimed.catch(this.opts.faults.catcher('presence', { op: 'claim', status: change.status }));
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
    const flap = this.opts.flap ?? DEFAULT_FLAP;
    this.registry.recordTransition(state, change.at, flap.transitions, flap.windowMs);
    this.summaries.touch(state.id);
    if (this.owns(state.id)) {
      state.seq++;
      const frame = statusChangeFrame(change, state.seq, state.flapping);
      this.opts.fanout.toDevice(state.id, state.seq, frame, 's');
      this.opts.fanout.toAll(frame, `s:${state.id}`);
      this.insights.afterStatusChange(state, change.at);
      if (change.status === 'online') this.commands.deviceOnline(state.id);
      this.observer?.statusAnnounced(state, change);
    }
    if (store) {
      this.opts.sink.enqueueStatusChange(change);
      this.opts.metrics.presenceTransitions.inc({ status: change.status, reason: change.reason });
    }
    this.watchForIncident(state, change);
  }

  /** Mass offline: one incident (on the `*` channel and stored as an alert) instead of an alert per device. */
  private watchForIncident(state: DeviceState, change: StatusChange): void {
    const verdict = this.massOffline.note(state.id, change.status, change.at, this.registry.online);
    // Every instance sees every transition; the owner of `*` speaks for the fleet.
    if (verdict === null || !this.owns(ALL_CHANNEL)) return;
    const alert: Alert = {
      id: verdict.id,
      deviceId: ALL_CHANNEL,
      type: 'mass_offline',
      severity: 'critical',
      state: verdict.transition === 'cleared' ? 'cleared' : 'raised',
      data: { devices: verdict.devices, returned: verdict.returned, window_s: verdict.windowMs / 1000, sample: verdict.sample },
      raisedAt: verdict.raisedAt,
      updatedAt: change.at,
      clearedAt: verdict.transition === 'cleared' ? change.at : null,
      acknowledgedAt: null,
      acknowledgedBy: null,
    };
    this.opts.fanout.toAll(alertFrame(0, alert, verdict.transition, change.at), `a:${alert.id}`);
    this.opts.sink.enqueueAlert(alert, verdict.transition);
    this.opts.metrics.alerts.inc({ transition: verdict.transition, severity: 'critical' });
    if (verdict.transition === 'raised') this.opts.metrics.massOfflineIncidents.inc();
  }
}
