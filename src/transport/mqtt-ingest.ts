import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { decodeTelemetry, type TelemetryLimits } from '../domain/telemetry.js';
import type { Faults } from '../errors/boundary.js';
import { isDeviceId } from '../domain/device-id.js';
import { describeTextPath, findUnstorableText, mayHoldUnstorableText } from '../domain/storable-text.js';
import { TOO_OLD, olderThanRetention } from '../domain/reading-age.js';
import type { IngestEntry } from '../cluster/ingest-entry.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { installAckGate, type DurabilitySource } from './ack-gate.js';
import { BacklogMarker } from './backlog-marker.js';
import { redactUrl } from '../redact-url.js';
import { decodeMappedTelemetry } from '../domain/mapped-telemetry.js';
import { SKIP_REASONS, type SkipReason } from '../domain/readings.js';
import type { MqttInputs } from './mqtt-inputs.js';
import { matchTemplate } from './topic-templates.js';

export interface MqttIngestOptions {
  readonly url: string;
  readonly topicPrefix: string;
  readonly clientId: string;
  readonly qos: 0 | 1;
  readonly clean: boolean;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly limits: TelemetryLimits;
  /** Readings older than this (the telemetry retention window) are refused. */
  readonly maxReadingAgeMs: number;
  /** 5 (default): Receive Maximum sets the broker's window of unacknowledged messages; 4 for old brokers. */
  readonly protocolVersion: 4 | 5;
  readonly receiveMaximum: number;
  readonly sessionExpiryS: number;
  /** With QoS 1, acknowledgements wait until the writer has stored what each message produced. */
  readonly durability: DurabilitySource;
  /** Where device messages enter the hub; in cluster mode it decides whether one is handled here (IngestEntry). */
  readonly entry: IngestEntry;
  /** Cluster mode: members markers on the control topic, and the subscription's ups and downs (StreamOwnership). */
  readonly control?: StreamControl | undefined;
  /** Topic templates, field map and ignored ids for fleets in their own shape (MQTT_PRESET, …). */
  readonly inputs?: MqttInputs | undefined;
  /** The hub's own Last Will (retained, QoS 1): its state topic says `offline` when it dies. */
  readonly will?: { readonly topic: string; readonly payload: string } | undefined;
  /** Each (re)connection, once subscribed: the hub states it is online. */
  readonly onConnected?: (() => void) | undefined;
}

export interface StreamControl {
  /** A message on the hub-only control topic; true when it was this handler's (not the backlog marker). */
  take(payload: Buffer): boolean;
  /** Every device topic (and the control topic) is subscribed on a new connection. */
  onSubscribed(): void;
  onDisconnected(): void;
}

export interface MqttIngest {
  readonly connected: boolean;
  /** Handles a device message as if it had arrived here (`replayed`: a parked cluster message, already routed). */
  handle(topic: string, payload: Buffer, receivedAt: number, replayed: boolean): void;
  /** Publishes at QoS 1 (retained if asked); resolves once the broker acknowledged it. */
  publish(topic: string, payload: string, retain: boolean): Promise<void>;
  /** Publishes a command to `{prefix}/{deviceId}/commands` at QoS 1. */
  publishCommand(deviceId: string, payload: string): void;
  /** Publishes to the hub-only control topic at QoS 1 (cluster members markers). */
  publishControl(payload: string): void;
  /** Resolves once the first connection and subscription are up. */
  ready(): Promise<void>;
  /** Resolves once the broker has delivered what it queued for this session before the first connection (ms it took). */
  backlogRead(): Promise<number>;
  stop(): Promise<void>;
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** An invalid device is logged at most this often (every message is still counted). */
const INVALID_LOG_INTERVAL_MS = 60_000;
const INVALID_LOG_MEMORY = 10_000;
const LATENCY_SAMPLE_MASK = 63;

/**
 * The hub's MQTT client. Subscribes to `{prefix}/+/telemetry`, `…/heartbeat` and `…/status` with a
 * persistent session (QoS 1, fixed client id, clean=false by default) so the broker keeps messages
 * while the hub is away, and reconnects with exponential backoff and jitter.
 */
export function startMqttIngest(opts: MqttIngestOptions, hub: Hub, log: Logger, metrics: Metrics, faults: Faults): MqttIngest {
  const prefix = `${opts.topicPrefix}/`;
  const templates = opts.inputs?.templates ?? [];
  const ignoredIds = opts.inputs?.ignoredIds ?? new Set<string>();
  const fieldMap = opts.inputs?.fieldMap ?? new Map<string, string>();
  const topics = ['telemetry', 'heartbeat', 'status', 'commands/ack'].map((kind) => `${prefix}+/${kind}`);
  for (const t of templates) topics.push(t.filter);
  const ignored = metrics.messagesIn.labels({ kind: 'other', outcome: 'ignored' });
  // Readings skipped inside stored messages (strings, nulls, …), counted like accepted ones: in plain numbers.
  const skippedSince = new Map<SkipReason, number>(SKIP_REASONS.map((r) => [r, 0]));
  const onSkip = (reason: SkipReason) => skippedSince.set(reason, skippedSince.get(reason)! + 1);
  const lastInvalidLog = new Map<string, number>();
  let attempt = 0;
  let sampled = 0;
  let stopping = false;
  let state: 'connecting' | 'connected' | 'disconnected' = 'connecting';
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

  const clientOptions: IClientOptions = {
    clientId: opts.clientId,
    clean: opts.clean,
    protocolVersion: opts.protocolVersion,
    // MQTT 5 ends a session at disconnect unless it has an expiry: keep it, or the broker drops our backlog.
    ...(opts.protocolVersion === 5
      ? { properties: { receiveMaximum: opts.receiveMaximum, sessionExpiryInterval: opts.clean ? 0 : opts.sessionExpiryS } }
      : {}),
    reconnectPeriod: BACKOFF_BASE_MS,
    // MQTT.js traces every packet through `debug` (string building and a namespace check each time):
    // the hub logs its own connection events, so its tracing is switched off.
    log: () => undefined,
    connectTimeout: 10_000,
    keepalive: 30,
    resubscribe: false,
    username: opts.username,
    password: opts.password,
    ...(opts.will ? { will: { topic: opts.will.topic, payload: Buffer.from(opts.will.payload), qos: 1 as const, retain: true } } : {}),
  };
  const client: MqttClient = connect(opts.url, clientOptions);
  const marker = new BacklogMarker(opts.topicPrefix);
  // Cluster mode: the control topic is read in the same subscription as the device topics, so a
  // members marker keeps its place among the device messages on every connection.
  if (opts.control !== undefined) topics.push(marker.topic);
  let markerSent = false;
  if (opts.qos === 1) installAckGate(client, opts.durability, metrics, opts.receiveMaximum);

  let resolveReady!: () => void;
  let rejectReady!: (error: Error) => void;
  const readyPromise = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  readyPromise.catch(() => undefined);

  const setState = (next: typeof state, detail: Record<string, unknown> = {}) => {
    if (next === state) return;
    state = next;
    metrics.mqttConnected.set(next === 'connected' ? 1 : 0);
    const where = { url: redactUrl(opts.url), ...detail };
    if (next === 'connected') log.info(where, 'mqtt connected');
    else log.warn(where, 'mqtt disconnected; reconnecting with backoff');
  };

  client.on('connect', (connack) => {
    // Acknowledgements and commands leave at once rather than wait for Nagle's algorithm.
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    attempt = 0;
    client.options.reconnectPeriod = BACKOFF_BASE_MS;
    client.subscribe(topics, { qos: opts.qos }, (error) => {
      if (error) {
        log.error({ err: error.message, topics }, 'mqtt subscribe failed');
        rejectReady(error);
        return;
      }
      setState('connected', { sessionPresent: connack.sessionPresent, topics });
      opts.control?.onSubscribed();
      resolveReady();
      if (!markerSent) {
        markerSent = true;
        // The hub's own publications wait for the marker to be sent, so they never delay it.
        marker.send(client, (failed) => log.warn({ err: failed.message, topic: marker.topic }, 'backlog marker not sent; presence waits PRESENCE_BACKLOG_WAIT_S'), () => opts.onConnected?.());
      } else opts.onConnected?.();
    });
  });
  client.on('reconnect', () => {
    metrics.mqttReconnects.inc();
    attempt++;
    // Exponential backoff with full jitter for the next attempt, so a fleet of hubs does not stampede.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
    client.options.reconnectPeriod = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  });
  client.on('close', () => {
    opts.control?.onDisconnected();
    if (!stopping) setState('disconnected');
  });
  client.on('error', (error) => {
    if (state !== 'disconnected') log.warn({ err: error.message, url: redactUrl(opts.url) }, 'mqtt error');
  });

  const control = opts.control;
  const entry = opts.entry;
  client.on('message', (topic, payload) => {
    if (control !== undefined && topic === marker.topic && control.take(payload)) return;
    if (!marker.take(topic, payload)) guardedHandle(topic, payload, Date.now(), false);
  });

  /**
   * The boundary of one device message (from the broker, or replayed after parking): a fault
   * is counted and logged (rate-limited), the message is acknowledged like a refused one, and the
   * next message is handled. A try block costs nothing on the hot path while nothing throws.
   */
  function guardedHandle(topic: string, payload: Buffer, receivedAt: number, replayed: boolean): void {
    try {
      handle(topic, payload, receivedAt, replayed);
    } catch (error) {
      faults.report('mqtt', error, { topic: topic.slice(0, 200), replayed });
    }
  }

  function handle(topic: string, payload: Buffer, receivedAt: number, replayed: boolean): void {
    if (templates.length !== 0 && handleTemplated(topic, payload, receivedAt, replayed)) return;
    if (!topic.startsWith(prefix)) return;
    const slash = topic.indexOf('/', prefix.length);
    if (slash === -1) return;
    const deviceId = topic.slice(prefix.length, slash);
    if (entry.clustered && isDeviceId(deviceId) && entry.route(deviceId, topic, payload, receivedAt, replayed)) return;
    dispatch(deviceId, topic.slice(slash + 1), payload, receivedAt);
  }

  /** A topic of a template (`zigbee2mqtt/{id}`, …): false when none matches. */
  function handleTemplated(topic: string, payload: Buffer, receivedAt: number, replayed: boolean): boolean {
    const match = matchTemplate(templates, topic);
    if (match === null) return false;
    const { deviceId } = match;
    if (ignoredIds.has(deviceId)) {
      ignored.inc();
      return true;
    }
    if (entry.clustered && isDeviceId(deviceId) && entry.route(deviceId, topic, payload, receivedAt, replayed)) return true;
    dispatch(deviceId, match.kind === 'availability' ? 'status' : match.kind === 'telemetry' ? 'mapped' : 'heartbeat', payload, receivedAt);
    return true;
  }

  function dispatch(deviceId: string, kind: string, payload: Buffer, receivedAt: number): void {
    if (kind === 'telemetry') onTelemetry(deviceId, payload, receivedAt, false);
    else if (kind === 'mapped') onTelemetry(deviceId, payload, receivedAt, true);
    else if (kind === 'heartbeat') onHeartbeat(deviceId, receivedAt);
    else if (kind === 'status') onStatus(deviceId, payload, receivedAt);
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
      taken = entry.telemetry(decoded.telemetry);
      metrics.ingestToPush.observe((performance.now() - started) / 1000);
    } else taken = entry.telemetry(decoded.telemetry);
    if (taken) acceptedSinceFlush++;
    else refused.telemetry.inc();
  }

  function onHeartbeat(deviceId: string, receivedAt: number): void {
    if (!isDeviceId(deviceId)) return rejected('heartbeat', deviceId, 'invalid_device_id', 'bad device id in topic', receivedAt);
    if (entry.heartbeat(deviceId, receivedAt)) metrics.messagesIn.inc({ kind: 'heartbeat', outcome: 'accepted' });
    else refused.heartbeat.inc();
  }

  function onStatus(deviceId: string, payload: Buffer, receivedAt: number): void {
    if (!isDeviceId(deviceId)) return rejected('status', deviceId, 'invalid_device_id', 'bad device id in topic', receivedAt);
    const online = parseStatusPayload(payload);
    if (online === null) {
      return rejected('status', deviceId, 'invalid_status', 'status payload must be online or offline (any case), {"online":bool} or {"state":"online"|"offline"}', receivedAt);
    }
    if (entry.deviceSaid(deviceId, online, receivedAt)) metrics.messagesIn.inc({ kind: 'status', outcome: 'accepted' });
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
    get connected() {
      return state === 'connected';
    },
    handle: guardedHandle,
    publish(topic, payload, retain) {
      return new Promise<void>((resolve, reject) => {
        client.publish(topic, payload, { qos: 1, retain }, (error) => (error ? reject(error) : resolve()));
      });
    },
    publishCommand(deviceId, payload) {
      client.publish(`${prefix}${deviceId}/commands`, payload, { qos: 1 });
    },
    publishControl(payload) {
      client.publish(marker.topic, payload, { qos: 1 });
    },
    ready: () => readyPromise,
    backlogRead: () => marker.read,
    async stop() {
      stopping = true;
      clearInterval(acceptedFlusher);
      flushAccepted();
      await new Promise<void>((resolve) => client.end(false, () => resolve()));
      metrics.mqttConnected.set(0);
    },
  };
}

/**
 * `online` / `offline` in any case (Home Assistant, Zigbee2MQTT 1.x; Tasmota's LWT says `Online` /
 * `Offline`), JSON `{"online": true|false}`, or `{"state": "online"|"offline"}` (Zigbee2MQTT 2.x);
 * anything else is null.
 */
export function parseStatusPayload(payload: Buffer): boolean | null {
  if (payload.length > 256) return null;
  const text = payload.toString('utf8').trim();
  const word = wordOf(text);
  if (word !== null) return word;
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === 'object' && body !== null) {
      const { online, state } = body as { online?: unknown; state?: unknown };
      if (typeof online === 'boolean') return online;
      if (typeof state === 'string') return wordOf(state);
    }
  } catch {
    // not JSON: fall through
  }
  return null;
}

function wordOf(text: string): boolean | null {
  if (text.length !== 6 && text.length !== 7) return null;
  const lower = text.toLowerCase();
  return lower === 'online' ? true : lower === 'offline' ? false : null;
}

export type CommandAckResult =
  | { readonly ok: true; readonly commandId: string; readonly status: 'received' | 'succeeded' | 'failed'; readonly result: unknown }
  | { readonly ok: false; readonly reason: 'invalid_command_ack' | 'unstorable_text'; readonly detail: string };

const ACK_SHAPE = 'expected {"command_id","status":"received"|"succeeded"|"failed"} for a pending command';

/** `{"command_id","status":"received"|"succeeded"|"failed","result"}`; a result the database cannot store is refused here. */
export function parseCommandAck(payload: Buffer): CommandAckResult {
  const invalid = { ok: false, reason: 'invalid_command_ack', detail: ACK_SHAPE } as const;
  if (payload.length > 16_384) return invalid;
  let body: { command_id?: unknown; status?: unknown; result?: unknown };
  try {
    body = JSON.parse(payload.toString('utf8')) as typeof body;
  } catch {
    return invalid;
  }
  if (typeof body !== 'object' || body === null) return invalid;
  if (typeof body.command_id !== 'string' || body.command_id.length > 64) return invalid;
  if (body.status !== 'received' && body.status !== 'succeeded' && body.status !== 'failed') return invalid;
  const result = body.result ?? null;
  if (mayHoldUnstorableText(payload)) {
    const at = findUnstorableText(result);
    if (at !== null) return { ok: false, reason: 'unstorable_text', detail: `result.${describeTextPath(at)} holds NUL or a lone surrogate, which cannot be stored` };
  }
  return { ok: true, commandId: body.command_id, status: body.status, result };
}
