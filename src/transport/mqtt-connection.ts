import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { redactUrl } from '../redact-url.js';
import { installAckGate, type DurabilitySource } from './ack-gate.js';
import { BacklogMarker } from './backlog-marker.js';
import { createInbound, type IngestPort, type MqttInbound, type MqttInboundOptions } from './mqtt-inbound.js';

/** The broker connection's settings: where, who, and how messages are acknowledged. */
export interface MqttConnectionOptions {
  readonly url: string;
  readonly topicPrefix: string;
  readonly clientId: string;
  readonly qos: 0 | 1;
  readonly clean: boolean;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** 5 (default): Receive Maximum sets the broker's window of unacknowledged messages; 4 for old brokers. */
  readonly protocolVersion: 4 | 5;
  readonly receiveMaximum: number;
  /**
   * With QoS 1, the most acknowledgements the hub holds before it stops reading from the broker
   * (default: `receiveMaximum`); the hub sets half of WRITER_MAX_QUEUE, so a broker overrunning its
   * window can never make the writer drop readings whose acknowledgements it holds.
   */
  readonly holdLimit?: number;
  readonly sessionExpiryS: number;
  /** With QoS 1, acknowledgements wait until the writer has stored what each message produced. */
  readonly durability: DurabilitySource;
  /** The hub's own Last Will (retained, QoS 1): its state topic says `offline` when it dies. */
  readonly will?: { readonly topic: string; readonly payload: string } | undefined;
  /** Each (re)connection, once subscribed: the hub states it is online. */
  readonly onConnected?: (() => void) | undefined;
}

/** The hub's side of the broker that needs no hub: publishing, and whether the connection is up. */
export interface MqttPublisher {
  readonly connected: boolean;
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

export interface MqttIngest extends MqttPublisher {
  /** Handles a device message as if it had arrived here (`replayed`: a parked cluster message, already routed). */
  handle(topic: string, payload: Buffer, receivedAt: number, replayed: boolean, retained?: boolean): void;
}

export interface MqttConnection extends MqttPublisher {
  /**
   * The second phase, once the hub exists: subscribes the device topics, reads their messages into
   * `port`, and opens the connection. Once per connection.
   */
  startIngest(port: IngestPort, opts: MqttInboundOptions, faults: Faults): MqttIngest;
  /**
   * A message the cluster parked while its device changed hands (IngestRouter), handled now as if it
   * had just arrived; the router exists before the ingest starts, and parks nothing until then.
   */
  replay(topic: string, payload: Buffer, receivedAt: number, retained: boolean): void;
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;

/**
 * The hub's MQTT client, in two phases: created before the hub (so the hub can be given
 * `publishCommand` at construction), then `startIngest` with the hub. The MQTT.js client exists only
 * from `startIngest` on: with a persistent session (QoS 1, fixed client id, clean=false by default,
 * so the broker keeps messages while the hub is away) the broker delivers its queue right after
 * CONNACK, before any SUBSCRIBE, and MQTT.js acknowledges each message once its handlers return, so
 * a connection opened before there is a reader would lose messages. Publishes asked for before wait
 * here, in order, and go to MQTT.js (which queues them until connected) when the client is made.
 * Reconnects with exponential backoff and jitter.
 */
export function createMqttConnection(opts: MqttConnectionOptions, log: Logger, metrics: Metrics): MqttConnection {
  let attempt = 0;
  let stopping = false;
  let state: 'connecting' | 'connected' | 'disconnected' = 'connecting';
  let inbound: MqttInbound | null = null;
  let client: MqttClient | null = null;
  /** Publishes before the client exists (a handful at start-up: commands, the hub's state); null: dropped by `stop`. */
  let early: ((client: MqttClient | null) => void)[] = [];
  const withClient = (publish: (client: MqttClient | null) => void) => {
    if (client !== null || stopping) publish(client);
    else early.push(publish);
  };
  const marker = new BacklogMarker(opts.topicPrefix);
  let markerSent = false;

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

  /** Connects, and on each connection subscribes the device topics (and the control topic), then, the first time, sends the backlog marker. */
  function open(reading: MqttInbound): MqttClient {
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
    const c: MqttClient = connect(opts.url, clientOptions);
    // Cluster mode: the control topic is read in the same subscription as the device topics, so a
    // members marker keeps its place among the device messages on every connection.
    const topics = reading.control === undefined ? [...reading.topics] : [...reading.topics, marker.topic];
    if (opts.qos === 1) installAckGate(c, opts.durability, metrics, opts.receiveMaximum, opts.holdLimit ?? opts.receiveMaximum);

    c.on('connect', (connack) => {
      // Acknowledgements and commands leave at once rather than wait for Nagle's algorithm.
      (c.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      attempt = 0;
      c.options.reconnectPeriod = BACKOFF_BASE_MS;
      c.subscribe(topics, { qos: opts.qos }, (error) => {
        if (error) {
          log.error({ err: error.message, topics }, 'mqtt subscribe failed');
          rejectReady(error);
          return;
        }
        setState('connected', { sessionPresent: connack.sessionPresent, topics });
        reading.control?.onSubscribed();
        resolveReady();
        if (!markerSent) {
          markerSent = true;
          // The hub's own publications wait for the marker to be sent, so they never delay it.
          marker.send(c, (failed) => log.warn({ err: failed.message, topic: marker.topic }, 'backlog marker not sent; presence waits PRESENCE_BACKLOG_WAIT_S'), () => opts.onConnected?.());
        } else opts.onConnected?.();
      });
    });
    c.on('reconnect', () => {
      metrics.mqttReconnects.inc();
      attempt++;
      // Exponential backoff with full jitter for the next attempt, so a fleet of hubs does not stampede.
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
      c.options.reconnectPeriod = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    });
    c.on('close', () => {
      reading.control?.onDisconnected();
      if (!stopping) setState('disconnected');
    });
    c.on('error', (error) => {
      if (state !== 'disconnected') log.warn({ err: error.message, url: redactUrl(opts.url) }, 'mqtt error');
    });

    const { control, handle } = reading;
    // `retain` is set on a message the broker sends from its retained store (at each subscription,
    // so at every start and reconnection), not on one forwarded live: mqtt-inbound.ts decides what
    // such an old message may still mean.
    c.on('message', (topic, payload, packet) => {
      if (control !== undefined && topic === marker.topic && control.take(payload)) return;
      if (!marker.take(topic, payload)) handle(topic, payload, Date.now(), false, packet.retain);
    });
    return c;
  }

  const connected = () => state === 'connected';
  // Shared by the connection and the ingest it starts (`connected` is a getter on each).
  const methods: Omit<MqttPublisher, 'connected'> = {
    publish(topic, payload, retain) {
      return new Promise<void>((resolve, reject) => {
        withClient((c) => {
          if (c === null) reject(new Error('the MQTT connection was stopped before it started'));
          else c.publish(topic, payload, { qos: 1, retain }, (error) => (error ? reject(error) : resolve()));
        });
      });
    },
    publishCommand(deviceId, payload) {
      withClient((c) => c?.publish(`${opts.topicPrefix}/${deviceId}/commands`, payload, { qos: 1 }));
    },
    publishControl(payload) {
      withClient((c) => c?.publish(marker.topic, payload, { qos: 1 }));
    },
    ready: () => readyPromise,
    backlogRead: () => marker.read,
    async stop() {
      stopping = true;
      for (const publish of early.splice(0)) publish(null);
      if (inbound === null || client === null) return; // never started: no client to end
      inbound.stop();
      const ending = client;
      await new Promise<void>((resolve) => ending.end(false, () => resolve()));
      metrics.mqttConnected.set(0);
    },
  };

  return {
    get connected() {
      return connected();
    },
    ...methods,
    replay(topic, payload, receivedAt, retained) {
      inbound?.handle(topic, payload, receivedAt, true, retained);
    },
    startIngest(port, inboundOpts, faults) {
      if (inbound !== null || stopping) throw new Error(stopping ? 'the MQTT connection is stopped' : 'the MQTT ingest is already started on this connection');
      const reading = createInbound(opts.topicPrefix, inboundOpts, port, log, metrics, faults);
      inbound = reading;
      const opened = open(reading);
      client = opened;
      for (const publish of early) publish(opened);
      early = [];
      return {
        get connected() {
          return connected();
        },
        ...methods,
        handle: reading.handle,
      };
    },
  };
}
