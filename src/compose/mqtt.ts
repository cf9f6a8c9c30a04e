import { embeddedBrokerMaxPacket, telemetryLimits } from '../config.js';
import { IngestEntry } from '../cluster/ingest-entry.js';
import { IngestRouter } from '../cluster/ingest-router.js';
import { StreamOwnership } from '../cluster/stream-ownership.js';
import type { Outlets } from '../hub/outlets.js';
import { redactUrl } from '../redact-url.js';
import type { Writer } from '../storage/writer.js';
import { startEmbeddedBroker } from '../transport/embedded-broker.js';
import { HubState } from '../transport/hub-state.js';
import { MqttAvailability } from '../transport/mqtt-availability.js';
import { createMqttConnection, type MqttConnection, type MqttIngest } from '../transport/mqtt-ingest.js';
import { haNodeId, hubStateTopic, mqttInputs } from '../transport/mqtt-inputs.js';
import type { ClusterParts } from './cluster.js';
import type { StartContext } from './context.js';
import type { HubCore } from './hub-core.js';

const INGEST_READY_TIMEOUT_MS = 10_000;

/** The first phase: the broker and the hub's connection to it, before the hub exists. */
export interface MqttLink {
  readonly connection: MqttConnection;
  /** The hub's own retained state and Last Will (null: HUB_STATE_TOPIC=off). */
  readonly hubState: HubState | null;
  /** Retained availability per device and Home Assistant discovery (null: both off). */
  readonly availability: MqttAvailability | null;
  /** What the hub sends through the broker: commands, and availability per device (if on). */
  readonly outlets: Outlets;
  /** The broker the hub ingests from (the embedded one's address when MQTT_URL is unset). */
  readonly url: string;
  /** How the parts line of the start log names the broker. */
  readonly description: string;
}

/**
 * Phase one: the broker (embedded aedes when MQTT_URL is unset) and the hub's MQTT connection,
 * which opens only when ingest starts (publishes wait in MQTT.js's queue until then); the hub's own
 * state topic with its Last Will and retained availability per device
 * (docs/presence.md#what-the-hub-publishes). The hub is then built with these outlets.
 */
export async function connectMqtt(ctx: StartContext, writer: Writer, instanceId: string | null): Promise<MqttLink> {
  const { config, life, log, metrics, faults } = ctx;
  let url = config.MQTT_URL;
  if (url === undefined) {
    const broker = await startEmbeddedBroker(config.MQTT_HOST, config.MQTT_PORT, embeddedBrokerMaxPacket(config), () => metrics.brokerOversizePackets.inc());
    life.onStop(() => broker.stop());
    url = broker.url;
  }
  const stateTopic = hubStateTopic(config, instanceId);
  let hubState: HubState | null = null;
  const connection = createMqttConnection(
    {
      url,
      will: stateTopic === null ? undefined : HubState.will(stateTopic, config.AVAILABILITY_FORMAT),
      // Called on each (re)connection, once ingest has started (and so after hubState exists).
      onConnected: () => hubState?.connected(),
      topicPrefix: config.MQTT_TOPIC_PREFIX,
      // Each instance needs its own session on the broker.
      clientId: instanceId !== null && config.MQTT_CLIENT_ID === 'vigil-hub' ? `vigil-${instanceId}` : config.MQTT_CLIENT_ID,
      qos: config.MQTT_QOS as 0 | 1,
      // Cluster mode: a clean session on every connection, so the stream holds nothing older than
      // the members marker this instance reads first (docs/scaling.md).
      clean: instanceId !== null || config.MQTT_CLEAN_SESSION,
      username: config.MQTT_USERNAME,
      password: config.MQTT_PASSWORD,
      protocolVersion: (config.MQTT_PROTOCOL ?? (config.MQTT_URL === undefined ? 4 : 5)) as 4 | 5,
      receiveMaximum: config.MQTT_RECEIVE_MAXIMUM,
      // Half the writer's bound: readings held for acknowledgement never reach WRITER_MAX_QUEUE (a
      // message stores at most one reading), whatever window the broker keeps.
      holdLimit: Math.floor(config.WRITER_MAX_QUEUE / 2),
      sessionExpiryS: instanceId !== null ? 0 : config.MQTT_SESSION_EXPIRY_S,
      durability: writer,
    },
    log,
    metrics,
  );
  const publish = (topic: string, payload: string, retain: boolean) => connection.publish(topic, payload, retain);
  if (stateTopic !== null) {
    hubState = new HubState(stateTopic, config.AVAILABILITY_FORMAT, publish, metrics, log);
  }
  let observer: MqttAvailability | null = null;
  if (config.AVAILABILITY_PUBLISH || config.HA_DISCOVERY) {
    observer = new MqttAvailability({
      publish,
      topicPrefix: config.MQTT_TOPIC_PREFIX,
      format: config.AVAILABILITY_FORMAT,
      perDevice: config.AVAILABILITY_PUBLISH,
      hubStateTopic: stateTopic,
      homeAssistant: config.HA_DISCOVERY ? { prefix: config.HA_DISCOVERY_PREFIX, stateIntervalMs: config.HA_STATE_INTERVAL_S * 1000, nodeId: haNodeId(config) } : null,
      metrics,
      faults,
    });
  }
  return {
    connection,
    hubState,
    availability: observer,
    outlets: { commandPublisher: (deviceId, payload) => connection.publishCommand(deviceId, payload), observer },
    url,
    description: config.MQTT_URL === undefined ? `embedded aedes on ${url}` : `external ${redactUrl(url)}`,
  };
}

/** Where device messages enter the hub, from MQTT and HTTP alike; in a cluster, with the stream's ownership. */
export interface IngestParts {
  readonly entry: IngestEntry;
  readonly ownership: StreamOwnership | null;
}

/**
 * Once the hub exists: the one entry for device messages (cluster-aware: who owns each device,
 * held during a handoff) that the HTTP routes and the MQTT ingest both use.
 */
export function ingestEntry(ctx: StartContext, core: HubCore, link: MqttLink, cluster: ClusterParts | null): IngestParts {
  const { config, life, log, metrics, faults } = ctx;
  const { hub } = core;
  const ownership =
    cluster === null
      ? null
      : new StreamOwnership({ bus: cluster.bus, membership: cluster.membership, instanceId: cluster.instanceId, keyPrefix: config.REDIS_KEY_PREFIX, log, metrics, faults, probeMs: config.CLUSTER_PROBE_MS, handoffTimeoutMs: config.CLUSTER_HANDOFF_TIMEOUT_MS });
  const router = cluster === null || ownership === null ? undefined : new IngestRouter(cluster.cluster, ownership, hub.registry, metrics, (topic, payload, at, retained) => link.connection.replay(topic, payload, at, retained), faults);
  if (router !== undefined) life.onStop(() => router.stop());
  const entry = new IngestEntry({
    hub,
    owner: hub.owner,
    router,
    limits: telemetryLimits(config),
    maxReadingAgeMs: config.RETENTION_DAYS * 86_400_000,
    onSkip: (reason) => metrics.readingsSkipped.inc({ reason }),
  });
  return { entry, ownership };
}

/**
 * Phase two, last, once clients can be served: answer other instances, read the device topics into
 * the entry, judge presence after the broker's backlog, and join the stream's ownership.
 */
export async function startIngest(ctx: StartContext, core: HubCore, link: MqttLink, parts: IngestParts, cluster: ClusterParts | null): Promise<MqttIngest> {
  const { config, life, faults } = ctx;
  const { hub } = core;
  const { entry, ownership } = parts;
  // Every operation has its answer before anyone is answered (checked on a single instance too).
  const unserved = hub.owner.services.unserved();
  if (unserved.length > 0) throw new Error(`owner API operations nobody serves: ${unserved.join(', ')}`);
  if (cluster !== null) await cluster.cluster.start((op, deviceId, body) => hub.owner.answer(op, deviceId, body));
  const ingest = link.connection.startIngest(
    entry,
    {
      inputs: mqttInputs(config, cluster?.instanceId ?? null),
      router: entry.clustered ? entry : undefined,
      control: ownership ?? undefined,
      maxReadingAgeMs: config.RETENTION_DAYS * 86_400_000,
      limits: telemetryLimits(config),
    },
    faults,
  );
  judgePresenceAfterBacklog(ctx, ingest, core.backlogRead);
  life.onStop(() => hub.commands.stop());
  // Stops run in reverse: availability and the hub's `offline` state are published, the cluster
  // hands its devices over while still reading the stream, then the connection ends.
  life.onStop(() => ingest.stop());
  if (ownership !== null) {
    await ownership.start(ingest);
    life.onStop(() => ownership.leave(config.CLUSTER_HANDOFF_TIMEOUT_MS * 2));
  }
  const { hubState, availability } = link;
  // Devices may change owner: each one's Home Assistant configs are published again by its new owner.
  if (cluster !== null && availability !== null) cluster.membership.onChange(() => availability.ownershipChanged());
  if (hubState !== null) life.onStop(() => hubState.stop());
  if (availability !== null) life.onStop(() => availability.stop());
  await waitForIngest(ingest, ctx.log);
  return ingest;
}

/** Presence is judged once the broker's backlog for this session is read, or after PRESENCE_BACKLOG_WAIT_S. */
function judgePresenceAfterBacklog({ config, life, log, metrics }: StartContext, ingest: MqttIngest, backlogRead: () => void): void {
  const backlogWait = setTimeout(() => {
    log.warn({ waitedS: config.PRESENCE_BACKLOG_WAIT_S }, 'broker backlog not confirmed read; judging presence now');
    backlogRead();
  }, config.PRESENCE_BACKLOG_WAIT_S * 1000);
  backlogWait.unref();
  life.onStop(() => clearTimeout(backlogWait));
  void ingest.backlogRead().then((ms) => {
    clearTimeout(backlogWait);
    metrics.backlogReadSeconds.set(ms / 1000);
    log.info({ ms: Math.round(ms) }, 'broker backlog read; judging presence');
    backlogRead();
  });
}

async function waitForIngest(ingest: MqttIngest, log: StartContext['log']): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), INGEST_READY_TIMEOUT_MS);
  });
  const outcome = await Promise.race([ingest.ready().then(() => 'ready' as const), timeout]);
  clearTimeout(timer);
  if (outcome === 'timeout') log.warn('MQTT broker not reachable yet; the hub serves and keeps retrying (/readyz says not ready)');
}
