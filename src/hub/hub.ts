import type { Alert, AlertTransition, ScoredHealth } from '../domain/alert.js';
import type { CommandRequest } from '../domain/command.js';
import { blankState, type DeviceState } from '../domain/device-state.js';
import type { StatusChange } from '../domain/device-status.js';
import type { alertData } from '../domain/representations.js';
import type { Telemetry } from '../domain/telemetry.js';
import type { FleetRecovery } from '../fanout/fanout.js';
import { createOwnerApi, type HubOwnerApi } from '../cluster/owner-api/index.js';
import type { PresenceListener } from '../presence/presence-store.js';
import { CommandService } from './commands.js';
import { CommandViews } from './command-views.js';
import { DeviceEngine } from './device-engine.js';
import { DeviceRegistry } from './device-registry.js';
import { DeviceViews } from './device-views.js';
import { FleetSummaries } from './fleet-summary.js';
import { FramePublisher } from './frame-publisher.js';
import { FIXED_INSIGHTS, type HubOptions } from './hub-options.js';
import { Insights, type InsightSink } from './insights.js';
import { OfflineTimeouts, type OfflineTimeout } from './offline-timeouts.js';
import type { Outlets } from './outlets.js';
import { OwnerOperations, type SubmittedCommand } from './owner-operations.js';
import { PresenceTracker } from './presence-tracker.js';
import { SubscriptionService, type Prepared, type ResumeFrom } from './subscription-service.js';

export { ALL_CHANNEL } from './frame-publisher.js';
export type { DeviceObserver } from './outlets.js';
export type { HubOptions, InsightSettings } from './hub-options.js';
export type { SubmittedCommand } from './owner-operations.js';
export type { Prepared, ResumeFrom } from './subscription-service.js';

/**
 * The hub's core, composed of its parts: the device engine applies what devices say, the presence
 * tracker decides online and offline, the frame publisher numbers every frame and hands it to the
 * fan-out and storage once, the subscription service gives new followers their first frames, and
 * the owner operations answer and ask other instances. The methods here delegate to them, so
 * callers keep one object; a module that needs one part can depend on that part alone.
 * Everything is synchronous, so a snapshot and the stream after it neither overlap nor leave a gap.
 */
export class Hub implements PresenceListener, InsightSink {
  readonly registry: DeviceRegistry;
  readonly insights: Insights;
  readonly commands: CommandService;
  /** Typed calls answered by the instance holding a device (all of them here, unless clustered). */
  readonly owner: HubOwnerApi;
  readonly views: DeviceViews;
  readonly commandViews: CommandViews;
  /** The live fleet table (`subscribe_all` with `summaries`): devices marked here, sent once an interval. */
  readonly summaries: FleetSummaries;
  /** The parts, for a module that needs one of them only (`presence` decides online/offline; the store is in opts). */
  readonly publisher: FramePublisher;
  readonly devices: DeviceEngine;
  readonly presence: PresenceTracker;
  readonly subscriptions: SubscriptionService;
  readonly operations: OwnerOperations;
  private readonly outlets: Outlets;
  private readonly timeouts: OfflineTimeouts;
  private readonly now: () => number;
  /** Where a sweep's later slices report what throws (they run outside the timer's boundary). */
  private readonly sweepFaults: { readonly health: (error: unknown) => void; readonly offline: (error: unknown) => void };
  private readonly owns: (deviceId: string) => boolean;

  constructor(private readonly opts: HubOptions) {
    const { fanout, metrics, faults } = opts;
    this.sweepFaults = { health: faults.catcher('health_sweep'), offline: faults.catcher('offline_check') };
    const now = (this.now = opts.now ?? Date.now);
    const timeouts = (this.timeouts = new OfflineTimeouts(opts.defaultTimeoutMs, opts.typeTimeoutsMs, opts.learnedTimeouts ?? null, opts.deviceLimits.maxDevices));
    const registry = (this.registry = new DeviceRegistry(opts.deviceLimits, now));
    const owns = (this.owns = opts.cluster ? (deviceId) => opts.cluster!.owns(deviceId) : () => true);
    const owner = (this.owner = createOwnerApi(opts.cluster, metrics));
    const outlets = (this.outlets = { commandPublisher: opts.outlets?.commandPublisher ?? null, observer: opts.outlets?.observer ?? null });
    const publisher = (this.publisher = new FramePublisher(fanout, opts.sink, metrics));
    const commands = (this.commands = new CommandService(
      {
        publish: (deviceId, payload) => outlets.commandPublisher?.(deviceId, payload),
        isOnline: (deviceId) => registry.get(deviceId)?.status === 'online' && outlets.commandPublisher !== null,
        changed: (command) => {
          const state = registry.adopt(command.deviceId); // registry full: stored, but no channel to push it on
          publisher.commandUpdate(typeof state === 'string' ? null : state, command);
        },
        fault: faults.catcher('commands'),
      },
      now,
    ));
    const insights = (this.insights = new Insights({ ...FIXED_INSIGHTS, ...opts.insights, timeoutMsOf: (state) => timeouts.of(state) }, this));
    this.views = new DeviceViews(this);
    this.commandViews = new CommandViews(this);
    const summaries = (this.summaries = new FleetSummaries({ registry, insights, owns, owner, metrics, faults, now }));
    const { flap, massOffline } = opts;
    const presence = (this.presence = new PresenceTracker({ registry, store: opts.presence, timeouts, insights, commands, publisher, summaries, outlets, metrics, faults, owns, now, flap, massOffline }));
    const devices = (this.devices = new DeviceEngine({ registry, presence, publisher, timeouts, insights, summaries, outlets, owns }));
    const ownerSnapshot = (deviceId: string) => this.operations.ownerSnapshot(deviceId);
    const subscriptions = (this.subscriptions = new SubscriptionService({ fanout, registry, insights, devices, ownerSnapshot, now }));
    const acknowledgeAlert = (alertId: string, by: string) => this.acknowledgeAlert(alertId, by);
    this.operations = new OwnerOperations(owner, { fanout, subscriptions, commands, devices, insights, acknowledgeAlert });
  }

  /** True while the broker hands over its backlog (see DeviceEngine.readingBacklog). */
  get readingBacklog(): boolean {
    return this.devices.readingBacklog;
  }
  set readingBacklog(reading: boolean) {
    this.devices.readingBacklog = reading;
  }

  /** False when it came from a new device the registry refused: then nothing is registered, stored or pushed. */
  ingestTelemetry(t: Telemetry): boolean {
    return this.devices.ingestTelemetry(t);
  }

  /** False: a new device refused (see ingestTelemetry). */
  heartbeat(deviceId: string, at: number): boolean {
    return this.devices.heartbeat(deviceId, at);
  }

  deviceSaid(deviceId: string, online: boolean, at: number, retained = false): boolean {
    return this.devices.deviceSaid(deviceId, online, at, retained);
  }

  /** An availability input that holds its devices online said `online` or `offline` (every instance hears it). */
  availabilityHold(deviceId: string, held: boolean): void {
    this.devices.availabilityHold(deviceId, held);
  }

  forget(deviceId: string): void {
    this.devices.forget(deviceId);
  }

  countInvalid(reason: string): void {
    this.opts.metrics.invalidMessages.inc({ reason });
  }

  /** Re-scores every device this instance owns (the periodic sweep) and raises due offline alerts. */
  sweep(): void {
    this.insights.sweep(this.ownedDevices(), this.now(), true, this.presence.inIncident, this.sweepFaults.health);
  }

  /** Raises due offline alerts only (cheap, run often); devices in a mass-offline incident raise none. */
  sweepOffline(): void {
    this.insights.raiseDueOfflineAlerts(this.now(), this.ownedState, this.presence.inIncident, this.sweepFaults.offline);
  }

  private readonly ownedState = (deviceId: string): DeviceState | undefined => {
    const state = this.registry.get(deviceId);
    return state !== undefined && this.owns(deviceId) ? state : undefined;
  };

  private *ownedDevices(): Iterable<DeviceState> {
    for (const state of this.registry.values()) if (this.owns(state.id)) yield state;
  }

  submitCommand(deviceId: string, request: CommandRequest, idempotencyKey: string | null): SubmittedCommand | Promise<SubmittedCommand | null> {
    return this.operations.submitCommand(deviceId, request, idempotencyKey);
  }

  forgetEverywhere(id: string): Promise<void> {
    return this.operations.forgetEverywhere(id);
  }

  acknowledgeAlertAnywhere(alertId: string, by: string, may: (deviceId: string) => boolean): Promise<ReturnType<typeof alertData> | null | 'forbidden'> {
    return this.operations.acknowledgeAlertAnywhere(alertId, by, may);
  }

  acknowledgeAlert(alertId: string, by: string): Alert | null {
    // An alert's device is known unless the registry was full when it was restored (or it is the
    // fleet's `*`): its frame is then numbered on a state of its own.
    return this.insights.acknowledge(alertId, by, this.now(), (id) => {
      const state = this.registry.adopt(id);
      return typeof state === 'string' ? blankState(id) : state;
    });
  }

  get epoch(): string {
    return this.subscriptions.epoch;
  }

  follow(channel: string): Promise<void> {
    return this.subscriptions.follow(channel);
  }

  unfollow(channel: string): void {
    this.subscriptions.unfollow(channel);
  }

  prepare(deviceId: string, resume: ResumeFrom | null, followed: Promise<void>): Prepared | Promise<Prepared> {
    return this.subscriptions.prepare(deviceId, resume, followed);
  }

  prepareFleet(since: number | null, followed: Promise<void>): FleetRecovery | Promise<FleetRecovery> {
    return this.subscriptions.prepareFleet(since, followed);
  }

  snapshot(deviceId: string): string {
    return this.subscriptions.snapshot(deviceId);
  }

  /** Another instance numbered this device further (ownership moved): continue after its seq. */
  fenced(deviceId: string, storedSeq: number): void {
    const state = this.registry.get(deviceId);
    if (state !== undefined) this.publisher.fenced(state, storedSeq);
  }

  /** Insights scored a device: pushed and stored, its fleet row marked, told over MQTT. */
  healthScore(state: DeviceState, health: ScoredHealth, previous: number | null): void {
    this.publisher.healthScore(state, health, previous);
    this.summaries.touch(state.id);
    this.outlets.observer?.healthScored(state, health);
  }

  alert(state: DeviceState, alert: Alert, transition: AlertTransition): void {
    this.publisher.alert(state, alert, transition);
    this.summaries.touch(state.id);
  }

  onExpired(deviceId: string, lastSeen: number, deadline: number): void {
    this.presence.onExpired(deviceId, lastSeen, deadline);
  }

  onRemoteTransition(change: StatusChange): void {
    this.presence.onRemoteTransition(change);
  }

  onReconnected(): void {
    this.presence.onReconnected();
  }

  reconcile(): Promise<{ checked: number; offline: number; held: number }> {
    return this.presence.reconcile();
  }

  timeoutMsOf(state: DeviceState): number {
    return this.timeouts.of(state);
  }

  timeoutOf(deviceId: string): OfflineTimeout | null {
    return this.devices.timeoutOf(deviceId);
  }

  retime(state: DeviceState): void {
    this.presence.retime(state);
  }
}
