import { TOO_OLD, olderThanRetention } from '../domain/reading-age.js';
import type { OnSkip } from '../domain/readings.js';
import { validateTelemetry, type Telemetry, type TelemetryLimits } from '../domain/telemetry.js';
import type { DeviceState } from '../domain/device-state.js';
import type { Refusal } from '../hub/device-registry.js';
import type { OwnerAnswer, StatusOutcome } from './owner-api/index.js';
import { forwardedStatus } from './owner-api/shapes.js';
import type { TypedOwnerCalls } from './owner-api/typed-calls.js';

/** What device messages do to the hub once this instance handles them. */
export interface IngestHub {
  readonly registry: { admit(deviceId: string): DeviceState | Refusal };
  ingestTelemetry(t: Telemetry): boolean;
  heartbeat(deviceId: string, at: number): boolean;
  deviceSaid(deviceId: string, online: boolean, at: number, retained?: boolean): boolean;
  availabilityHold(deviceId: string, held: boolean): void;
  countInvalid(reason: string): void;
  /** A device's acknowledgement of a command (false: no pending command of the device has that id). */
  readonly commands: { acknowledge(deviceId: string, commandId: string, status: 'received' | 'succeeded' | 'failed', result: unknown): boolean };
}

/** The cluster's decision for one MQTT message (IngestRouter): true when it is not to be handled here now. */
export interface MessageRouting {
  route(deviceId: string, topic: string, payload: Buffer, receivedAt: number, replayed: boolean, retained: boolean): boolean;
}

export interface IngestEntryOptions {
  readonly hub: IngestHub;
  readonly owner: TypedOwnerCalls;
  /** Cluster mode: which MQTT messages this instance handles (undefined: a single instance handles all). */
  readonly router: MessageRouting | undefined;
  readonly limits: TelemetryLimits;
  /** Readings older than this (RETENTION_DAYS) are refused. */
  readonly maxReadingAgeMs: number;
  /** A reading left out of an HTTP status body (a string, …): counted as MQTT's are (vigil_readings_skipped_total). */
  readonly onSkip: OnSkip;
}

/**
 * Where device messages enter the hub, from MQTT and HTTP alike, and where the cluster decides who
 * handles them: one owner numbers, scores and stores each device (docs/scaling.md).
 * - MQTT: every instance reads the whole stream; `route` skips another instance's device (counted in
 *   vigil_cluster_not_owned_total) and holds a newly owned one during the handoff (IngestRouter).
 *   A single instance routes nothing (`clustered` false), so the hot path pays one boolean.
 * - HTTP (`POST /status`): the owner ingests it, here or, through the owner API, on the instance
 *   that owns the device; the owner's word comes back as a StatusOutcome.
 */
export class IngestEntry {
  readonly clustered: boolean;

  constructor(private readonly opts: IngestEntryOptions) {
    this.clustered = opts.router !== undefined;
    // Asked by another instance: the body was checked against the schema there, and is again (owner API) here.
    opts.owner.serve({
      ingestStatus: (deviceId, { body, receivedAt }) =>
        body.device_id === deviceId ? this.statusHere(deviceId, body, receivedAt) : { kind: 'invalid', field: 'body', reason: 'invalid', detail: 'invalid forwarded body' },
    });
  }

  /** MQTT, cluster mode: true when the message is not to be handled here now (another owner's, or held). */
  route(deviceId: string, topic: string, payload: Buffer, receivedAt: number, replayed: boolean, retained = false): boolean {
    return this.opts.router !== undefined && this.opts.router.route(deviceId, topic, payload, receivedAt, replayed, retained);
  }

  /** A validated reading this instance handles; false: a new device the registry refused. */
  ingestTelemetry(t: Telemetry): boolean {
    return this.opts.hub.ingestTelemetry(t);
  }

  heartbeat(deviceId: string, at: number): boolean {
    return this.opts.hub.heartbeat(deviceId, at);
  }

  deviceSaid(deviceId: string, online: boolean, at: number, retained = false): boolean {
    return this.opts.hub.deviceSaid(deviceId, online, at, retained);
  }

  /** Heard by every instance, whoever owns the device (see DeviceEngine.availabilityHold). */
  availabilityHold(deviceId: string, held: boolean): void {
    this.opts.hub.availabilityHold(deviceId, held);
  }

  /** Command acknowledgements reach the device's owner, which sent the command. */
  get commands(): IngestHub['commands'] {
    return this.opts.hub.commands;
  }

  /**
   * HTTP: a status body, as received (the route checked it against statusBody), for the device's
   * owner. Synchronous when this instance owns the device; otherwise the owner's outcome (`ok: false`:
   * it did not answer).
   */
  status(deviceId: string, rawBody: unknown, receivedAt: number): StatusOutcome | Promise<OwnerAnswer<StatusOutcome>> {
    if (this.opts.owner.isLocal(deviceId)) return this.statusHere(deviceId, rawBody, receivedAt);
    // Typed for the owner API (the same check the owner makes); extra keys travel as they came.
    const body = forwardedStatus.shape.body.safeParse(rawBody);
    if (!body.success) return { kind: 'invalid', field: 'body', reason: 'invalid', detail: 'invalid body' };
    return this.opts.owner.ingestStatus(deviceId, body.data, receivedAt);
  }

  /** The same validation and pipeline as MQTT telemetry. */
  private statusHere(deviceId: string, rawBody: unknown, receivedAt: number): StatusOutcome {
    const { hub } = this.opts;
    const decoded = validateTelemetry(deviceId, rawBody, receivedAt, this.opts.limits, this.opts.onSkip);
    if (!decoded.ok) {
      hub.countInvalid(decoded.reason);
      return { kind: 'invalid', field: 'body', reason: decoded.reason, detail: decoded.detail };
    }
    if (olderThanRetention(decoded.telemetry.ts, decoded.telemetry.receivedAt, this.opts.maxReadingAgeMs)) {
      hub.countInvalid(TOO_OLD);
      return { kind: 'invalid', field: 'timestamp', reason: TOO_OLD, detail: 'older than the retention window (RETENTION_DAYS)' };
    }
    // A new device may be refused (cap or rate); a known one is its Map lookup.
    const admitted = hub.registry.admit(deviceId);
    if (typeof admitted === 'string') return { kind: 'refused', reason: admitted };
    hub.ingestTelemetry(decoded.telemetry);
    if ((rawBody as { online?: unknown }).online === false) hub.deviceSaid(deviceId, false, decoded.telemetry.receivedAt);
    return { kind: 'accepted' };
  }
}
