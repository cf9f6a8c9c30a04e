import { decodeTelemetry, type Telemetry, type TelemetryLimits } from '../domain/telemetry.js';
import type { Faults } from '../errors/boundary.js';
import { isDeviceId } from '../domain/device-id.js';
import { TOO_OLD, olderThanRetention } from '../domain/reading-age.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { decodeMappedTelemetry } from '../domain/mapped-telemetry.js';
import { SKIP_REASONS, type SkipReason } from '../domain/readings.js';
import { ACK_SHAPE, parseCommandAck, parseStatusPayload } from './mqtt-payloads.js';
import type { MqttInputs } from './mqtt-inputs.js';
import { matchTemplate } from './topic-templates.js';

/**
 * What the MQTT ingest hands device messages to (the Hub satisfies it): each call is false when a
 * new device was refused by the registry (vigil_devices_refused_total says why).
 */
export interface IngestPort {
  ingestTelemetry(telemetry: Telemetry): boolean;
  heartbeat(deviceId: string, at: number): boolean;
  /** `retained`: the broker's stored copy of the device's last word (DeviceEngine.deviceSaid). */
  deviceSaid(deviceId: string, online: boolean, at: number, retained?: boolean): boolean;
  /**
   * An availability input that holds its devices online said `online` (held) or `offline`; told for
   * every device on the stream before the cluster routes the message (absent: nothing holds).
   */
  availabilityHold?(deviceId: string, held: boolean): void;
  /** False when no pending command of the device has that id. */
  readonly commands: { acknowledge(deviceId: string, commandId: string, status: 'received' | 'succeeded' | 'failed', result: unknown): boolean };
}

export interface StreamControl {
  /** A message on the hub-only control topic; true when it was this handler's (not the backlog marker). */
  take(payload: Buffer): boolean;
  /** Every device topic (and the control topic) is subscribed on a new connection. */
  onSubscribed(): void;
  onDisconnected(): void;
}

export interface MessageRouter {
  /** True when the message is not to be handled now (another instance's device, or parked); `replayed`: a parked one coming back. */
  route(deviceId: string, topic: string, payload: Buffer, receivedAt: number, replayed: boolean, retained: boolean): boolean;
}

/** The inbound side's settings: what is read and how it is judged. */
export interface MqttInboundOptions {
  readonly limits: TelemetryLimits;
  /** Readings older than this (the telemetry retention window) are refused. */
  readonly maxReadingAgeMs: number;
  /** Cluster mode: decides whether a device's message is handled here (see IngestRouter). */
  readonly router?: MessageRouter | undefined;
  /** Cluster mode: members markers on the control topic, and the subscription's ups and downs (StreamOwnership). */
  readonly control?: StreamControl | undefined;
  /** Topic templates, field map and ignored ids for fleets in their own shape (MQTT_PRESET, …). */
  readonly inputs?: MqttInputs | undefined;
}

/** The device messages of one MQTT connection, decoded into the port. */
export interface MqttInbound {
  /** The device topics to subscribe (`{prefix}/+/telemetry`, …, and the templates' filters). */
  readonly topics: readonly string[];
  readonly control: StreamControl | undefined;
  /**
   * Handles a device message inside its error boundary (`replayed`: a parked cluster message,
   * already routed; `retained`: sent from the broker's retained store, not live).
   */
  handle(topic: string, payload: Buffer, receivedAt: number, replayed: boolean, retained?: boolean): void;
  /** Adds what the counters hold to the metrics and stops their flusher. */
  stop(): void;
}

/** An invalid device is logged at most this often (every message is still counted). */
const INVALID_LOG_INTERVAL_MS = 60_000;
const INVALID_LOG_MEMORY = 10_000;
const LATENCY_SAMPLE_MASK = 63;

/** Reads `{prefix}/{id}/telemetry`, `…/heartbeat`, `…/status` and `…/commands/ack` (and template topics) into the port. */
export function createInbound(topicPrefix: string, opts: MqttInboundOptions, hub: IngestPort, log: Logger, metrics: Metrics, faults: Faults): MqttInbound {
  const prefix = `${topicPrefix}/`;
  const templates = opts.inputs?.templates ?? [];
  const ignoredIds = opts.inputs?.ignoredIds ?? new Set<string>();
  const fieldMap = opts.inputs?.fieldMap ?? new Map<string, string>();
  const topics = ['telemetry', 'heartbeat', 'status', 'commands/ack'].map((kind) => `${prefix}+/${kind}`);
  for (const t of templates) topics.push(t.filter);
  const ignored = metrics.messagesIn.labels({ kind: 'other', outcome: 'ignored' });
  // A retained reading or heartbeat is old news: neither heard nor stored (docs/presence.md#retained-messages).
  const retainedOld = {
    telemetry: metrics.messagesIn.labels({ kind: 'telemetry', outcome: 'retained' }),
    heartbeat: metrics.messagesIn.labels({ kind: 'heartbeat', outcome: 'retained' }),
  };
  // Readings skipped inside stored messages (strings, nulls, …), counted like accepted ones: in plain numbers.
  const skippedSince = new Map<SkipReason, number>(SKIP_REASONS.map((r) => [r, 0]));
  const onSkip = (reason: SkipReason) => skippedSince.set(reason, skippedSince.get(reason)! + 1);
  const lastInvalidLog = new Map<string, number>();
  let sampled = 0;
  // Counted in a plain number and added to the labelled counter once a second: a counter update
  // per message shows in profiles.
  const acceptedTelemetry = metrics.messagesIn.labels({ kind: 'telemetry', outcome: 'accepted' });
  // A new device the registry refused (vigil_devices_refused_total says why); with QoS 1 it is still
  // acknowledged, as nothing of it waits for storage.
  const refused = {
    telemetry: metrics.messagesIn.labels({ kind: 'telemetry', outcome: 'refused' }),
    heartbeat: metrics.messagesIn.labels({ kind: 'heartbeat', outcome: 'refused' }),
    status: metrics.messagesIn.labels({ kind: 'status', outcome: 'refused' }),
  };
  let acceptedSinceFlush = 0;
  const flushAccepted = () => {
    for (const [reason, n] of skippedSince) {
      if (n === 0) continue;
      metrics.readingsSkipped.inc({ reason }, n);
      skippedSince.set(reason, 0);
    }
    if (acceptedSinceFlush === 0) return;
    acceptedTelemetry.inc(acceptedSinceFlush);
    acceptedSinceFlush = 0;
  };
  const acceptedFlusher = setInterval(flushAccepted, 1000);
  acceptedFlusher.unref();
  metrics.beforeCollect(flushAccepted);

  /**
   * The boundary of one device message (from the broker, or replayed after parking): a fault
   * is counted and logged (rate-limited), the message is acknowledged like a refused one, and the
   * next message is handled. A try block costs nothing on the hot path while nothing throws.
   */
  function guardedHandle(topic: string, payload: Buffer, receivedAt: number, replayed: boolean, retained = false): void {
    try {
      handle(topic, payload, receivedAt, replayed, retained);
    } catch (error) {
      faults.report('mqtt', error, { topic: topic.slice(0, 200), replayed });
    }
  }

  function handle(topic: string, payload: Buffer, receivedAt: number, replayed: boolean, retained: boolean): void {
    if (templates.length !== 0 && handleTemplated(topic, payload, receivedAt, replayed, retained)) return;
    if (!topic.startsWith(prefix)) return;
    const slash = topic.indexOf('/', prefix.length);
    if (slash === -1) return;
    const deviceId = topic.slice(prefix.length, slash);
    if (opts.router !== undefined && isDeviceId(deviceId) && opts.router.route(deviceId, topic, payload, receivedAt, replayed, retained)) return;
    dispatch(deviceId, topic.slice(slash + 1), payload, receivedAt, retained);
  }

  /** A topic of a template (`zigbee2mqtt/{id}`, …): false when none matches. */
  function handleTemplated(topic: string, payload: Buffer, receivedAt: number, replayed: boolean, retained: boolean): boolean {
    const match = matchTemplate(templates, topic);
    if (match === null) return false;
    const { deviceId } = match;
    if (ignoredIds.has(deviceId)) {
      ignored.inc();
      return true;
    }
    // A holding input's word is marked on every instance, before routing: the device's next owner holds it too.
    if (match.hold && !replayed && hub.availabilityHold !== undefined && isDeviceId(deviceId)) {
      const online = parseStatusPayload(payload);
      if (online !== null) hub.availabilityHold(deviceId, online);
    }
    if (opts.router !== undefined && isDeviceId(deviceId) && opts.router.route(deviceId, topic, payload, receivedAt, replayed, retained)) return true;
    dispatch(deviceId, match.kind === 'availability' ? 'status' : match.kind === 'telemetry' ? 'mapped' : 'heartbeat', payload, receivedAt, retained);
    return true;
  }

  function dispatch(deviceId: string, kind: string, payload: Buffer, receivedAt: number, retained: boolean): void {
    if (retained && kind !== 'status' && kind !== 'commands/ack') {
      // The broker's stored copy of an old reading or heartbeat (delivered again at every
      // subscription): it was handled when it came live, and its time is unknown, so it is neither a
      // sign of life nor a new reading.
      if (kind === 'heartbeat') retainedOld.heartbeat.inc();
      else if (kind === 'telemetry' || kind === 'mapped') retainedOld.telemetry.inc();
      return;
    }
    if (kind === 'telemetry') onTelemetry(deviceId, payload, receivedAt, false);
    else if (kind === 'mapped') onTelemetry(deviceId, payload, receivedAt, true);
    else if (kind === 'heartbeat') onHeartbeat(deviceId, receivedAt);
    else if (kind === 'status') onStatus(deviceId, payload, receivedAt, retained);
    else if (kind === 'commands/ack') onCommandAck(deviceId, payload, receivedAt);
  }

  function onCommandAck(deviceId: string, payload: Buffer, receivedAt: number): void {
    const ack = parseCommandAck(payload);
    if (!ack.ok) return rejected('command_ack', deviceId, ack.reason, ack.detail, receivedAt);
    if (!hub.commands.acknowledge(deviceId, ack.commandId, ack.status, ack.result)) {
      return rejected('command_ack', deviceId, 'invalid_command_ack', ACK_SHAPE, receivedAt);
    }
    metrics.messagesIn.inc({ kind: 'command_ack', outcome: 'accepted' });
  }

  function onTelemetry(deviceId: string, payload: Buffer, receivedAt: number, mapped: boolean): void {
    const decoded = mapped
      ? decodeMappedTelemetry(deviceId, payload, receivedAt, opts.limits, fieldMap, onSkip)
      : decodeTelemetry(deviceId, payload, receivedAt, opts.limits, onSkip);
    if (!decoded.ok) {
      rejected('telemetry', deviceId, decoded.reason, decoded.detail, receivedAt);
      return;
    }
    if (olderThanRetention(decoded.telemetry.ts, receivedAt, opts.maxReadingAgeMs)) {
      return rejected('telemetry', deviceId, TOO_OLD, 'timestamp is older than the retention window (RETENTION_DAYS)', receivedAt);
    }
    let taken: boolean;
    if ((++sampled & LATENCY_SAMPLE_MASK) === 0) {
      const started = performance.now();
      taken = hub.ingestTelemetry(decoded.telemetry);
      metrics.ingestToPush.observe((performance.now() - started) / 1000);
    } else taken = hub.ingestTelemetry(decoded.telemetry);
    if (taken) acceptedSinceFlush++;
    else refused.telemetry.inc();
  }

  function onHeartbeat(deviceId: string, receivedAt: number): void {
    if (!isDeviceId(deviceId)) return rejected('heartbeat', deviceId, 'invalid_device_id', 'bad device id in topic', receivedAt);
    if (hub.heartbeat(deviceId, receivedAt)) metrics.messagesIn.inc({ kind: 'heartbeat', outcome: 'accepted' });
    else refused.heartbeat.inc();
  }

  function onStatus(deviceId: string, payload: Buffer, receivedAt: number, retained: boolean): void {
    if (!isDeviceId(deviceId)) return rejected('status', deviceId, 'invalid_device_id', 'bad device id in topic', receivedAt);
    const online = parseStatusPayload(payload);
    if (online === null) {
      return rejected('status', deviceId, 'invalid_status', 'status payload must be online or offline (any case), {"online":bool} or {"state":"online"|"offline"}', receivedAt);
    }
    if (hub.deviceSaid(deviceId, online, receivedAt, retained)) metrics.messagesIn.inc({ kind: 'status', outcome: 'accepted' });
    else refused.status.inc();
  }

  function rejected(kind: string, deviceId: string, reason: string, detail: string, at: number): void {
    metrics.messagesIn.inc({ kind, outcome: 'invalid' });
    metrics.invalidMessages.inc({ reason });
    const key = deviceId.slice(0, 128);
    const last = lastInvalidLog.get(key);
    if (last !== undefined && at - last < INVALID_LOG_INTERVAL_MS) return;
    if (lastInvalidLog.size >= INVALID_LOG_MEMORY) lastInvalidLog.clear();
    lastInvalidLog.set(key, at);
    log.warn({ device: key, kind, reason, detail }, 'invalid message dropped (logged at most once a minute per device)');
  }

  return {
    topics,
    control: opts.control,
    handle: guardedHandle,
    stop() {
      clearInterval(acceptedFlusher);
      flushAccepted();
    },
  };
}
