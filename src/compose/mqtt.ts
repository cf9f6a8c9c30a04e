import { embeddedBrokerMaxPacket, telemetryLimits } from '../config.js';
import { IngestRouter } from '../cluster/ingest-router.js';
import { StreamOwnership } from '../cluster/stream-ownership.js';
import { redactUrl } from '../redact-url.js';
import type { Writer } from '../storage/writer.js';
import { startEmbeddedBroker } from '../transport/embedded-broker.js';
import { HubState } from '../transport/hub-state.js';
import { MqttAvailability } from '../transport/mqtt-availability.js';
import { startMqttIngest, type MqttIngest } from '../transport/mqtt-ingest.js';
import { hubStateTopic, mqttInputs } from '../transport/mqtt-inputs.js';
import type { ClusterParts } from './cluster.js';
import type { StartContext } from './context.js';
import type { HubCore } from './hub-core.js';

const INGEST_READY_TIMEOUT_MS = 10_000;

export interface MqttPart {
  readonly ingest: MqttIngest;
  /** The broker the hub ingests from (the embedded one's address when MQTT_URL is unset). */
  readonly url: string;
  /** How the parts line of the start log names the broker. */
  readonly description: string;
}

/**
 * The broker (embedded aedes when MQTT_URL is unset), ingest from it, the cluster's stream
 * ownership, the hub's own state topic with its Last Will, and retained availability per device
 * (docs/presence.md#what-the-hub-publishes). Started last, once clients can be served.
 */
export async function startMqtt(ctx: StartContext, core: HubCore, writer: Writer, cluster: ClusterParts | null): Promise<MqttPart> {
  const { config, life, log, metrics, faults } = ctx;
  const { hub } = core;
  let url = config.MQTT_URL;
  if (url === undefined) {
    const broker = await startEmbeddedBroker(config.MQTT_HOST, config.MQTT_PORT, embeddedBrokerMaxPacket(config), () => metrics.brokerOversizePackets.inc());
    life.onStop(() => broker.stop());
    url = broker.url;
  }
  const instanceId = cluster?.instanceId ?? null;
  const ownership =
    cluster === null
      ? null
      : new StreamOwnership({ bus: cluster.bus, membership: cluster.membership, instanceId: cluster.instanceId, keyPrefix: config.REDIS_KEY_PREFIX, log, metrics, faults, probeMs: config.CLUSTER_PROBE_MS, handoffTimeoutMs: config.CLUSTER_HANDOFF_TIMEOUT_MS });
  let ingest: MqttIngest | null = null;
  const router = cluster === null || ownership === null ? undefined : new IngestRouter(cluster.cluster, ownership, hub.registry, metrics, (topic, payload, at) => ingest?.handle(topic, payload, at, true), faults);
  if (router !== undefined) life.onStop(() => router.stop());
  if (cluster !== null) await cluster.cluster.start((op, deviceId, body) => hub.queries.answer(op, deviceId, body));
  const stateTopic = hubStateTopic(config, instanceId);
  const hubState = stateTopic === null ? null : new HubState(stateTopic, config.AVAILABILITY_FORMAT, metrics, log);
  ingest = startMqttIngest(
    {
      inputs: mqttInputs(config, instanceId),
      will: hubState?.will,
      onConnected: hubState === null ? undefined : () => hubState.connected(),
      url,
      topicPrefix: config.MQTT_TOPIC_PREFIX,
      // Each instance needs its own session on the broker.
      clientId: instanceId !== null && config.MQTT_CLIENT_ID === 'vigil-hub' ? `vigil-${instanceId}` : config.MQTT_CLIENT_ID,
      router,
      control: ownership ?? undefined,
      qos: config.MQTT_QOS as 0 | 1,
      // Cluster mode: a clean session on every connection, so the stream holds nothing older than
      // the members marker this instance reads first (docs/scaling.md).
      clean: instanceId !== null || config.MQTT_CLEAN_SESSION,
      username: config.MQTT_USERNAME,
      password: config.MQTT_PASSWORD,
      protocolVersion: (config.MQTT_PROTOCOL ?? (config.MQTT_URL === undefined ? 4 : 5)) as 4 | 5,
      receiveMaximum: config.MQTT_RECEIVE_MAXIMUM,
      sessionExpiryS: instanceId !== null ? 0 : config.MQTT_SESSION_EXPIRY_S,
      durability: writer,
      maxReadingAgeMs: config.RETENTION_DAYS * 86_400_000,
      limits: telemetryLimits(config),
    },
    hub,
    log,
    metrics,
    faults,
  );
  const started = ingest;
  judgePresenceAfterBacklog(ctx, started, core.backlogRead);
  hub.commandPublisher = (deviceId, payload) => started.publishCommand(deviceId, payload);
  life.onStop(() => hub.commands.stop());
  life.onStop(() => started.stop());
  if (ownership !== null) {
    await ownership.start(started);
    // Runs first at stop: leave through the stream and hand the devices over while still reading it.
    life.onStop(() => ownership.leave(config.CLUSTER_HANDOFF_TIMEOUT_MS * 2));
  }
  const publish = (topic: string, payload: string, retain: boolean) => started.publish(topic, payload, retain);
  if (hubState !== null) {
    hubState.publish = publish;
    life.onStop(() => hubState.stop()); // runs before ingest.stop (stops are reversed)
  }
  if (config.AVAILABILITY_PUBLISH || config.HA_DISCOVERY) {
    const availability = new MqttAvailability({
      publish,
      topicPrefix: config.MQTT_TOPIC_PREFIX,
      format: config.AVAILABILITY_FORMAT,
      perDevice: config.AVAILABILITY_PUBLISH,
      hubStateTopic: stateTopic,
      homeAssistant: config.HA_DISCOVERY ? { prefix: config.HA_DISCOVERY_PREFIX, stateIntervalMs: config.HA_STATE_INTERVAL_S * 1000 } : null,
      metrics,
      faults,
    });
    hub.observer = availability;
    life.onStop(() => {
      hub.observer = null;
      availability.stop();
    });
  }
  await waitForIngest(started, ctx.log);
  return { ingest: started, url, description: config.MQTT_URL === undefined ? `embedded aedes on ${url}` : `external ${redactUrl(url)}` };
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
