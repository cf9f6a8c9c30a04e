import { healthWeights, initialRuleSet, typeTimeouts, type Config } from './config.js';
import { learnedTimeoutSettings } from './domain/learned-timeout.js';
import type { TelemetryLimits } from './domain/telemetry.js';
import { RuleStore } from './hub/rule-store.js';
import { ruleRoutes } from './transport/http/rule-routes.js';
import { scheduleHealthSweeps } from './jobs/health-sweep.js';
import { scheduleRetention } from './jobs/retention-job.js';
import { loadActiveAlerts, loadLatestHealth } from './storage/alert-repository.js';
import { loadPendingCommands } from './storage/command-repository.js';
import { hostname } from 'node:os';
import { Cluster } from './cluster/cluster.js';
import { IngestRouter } from './cluster/ingest-router.js';
import { IngestEntry } from './cluster/ingest-entry.js';
import { healthOperations } from './hub/health-views.js';
import { takeLease } from './cluster/lease.js';
import { Membership } from './cluster/membership.js';
import { StreamOwnership } from './cluster/stream-ownership.js';
import { RedisBus } from './cluster/redis-bus.js';
import { summaryPeers } from './cluster/summary-peers.js';
import type { Fanout } from './fanout/fanout.js';
import { createLocalFanout, historySettings } from './fanout/local-fanout.js';
import { createRedisFanout } from './fanout/redis-fanout.js';
import { Faults } from './errors/boundary.js';
import { Hub } from './hub/hub.js';
import { watchAlertGauges } from './hub/alert-gauges.js';
import { watchDeviceBounds } from './hub/device-bounds.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createMemoryPresence } from './presence/memory-presence.js';
import type { PresenceStore } from './presence/presence-store.js';
import { createRedisPresence } from './presence/redis-presence.js';
import { openDatabase, type Database } from './storage/database.js';
import { loadDeviceStates } from './storage/device-repository.js';
import { createWriter, type Writer } from './storage/writer.js';
import { createNotifications } from './notify/notifications.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './transport/embedded-broker.js';
import { probeRoutes, type ReadinessCheck } from './transport/http/probes.js';
import { accessPolicy } from './security/access.js';
import { JwtVerifier, jwtSettings } from './security/jwt.js';
import { ApiKeyStore } from './security/api-keys.js';
import { RateLimiter } from './security/rate-limiter.js';
import { WsTokens } from './security/ws-token.js';
import { adminRoutes } from './transport/http/admin-routes.js';
import { commandRoutes } from './transport/http/command-routes.js';
import { notificationRoutes } from './transport/http/notification-routes.js';
import { openApiRoute } from './transport/http/openapi.js';
import { mountRoutes, type Route } from './transport/http/router.js';
import { dashboardRoutes } from './transport/http/static-files.js';
import { VERSION } from './version.js';
import { hostRule, type HttpSecurity } from './transport/http/guard.js';
import { healthRoutes } from './transport/http/health-routes.js';
import { ingestRoutes } from './transport/http/ingest-routes.js';
import { statusRoutes } from './transport/http/status-routes.js';
import { startMqttIngest, type MqttIngest } from './transport/mqtt-ingest.js';
import { MqttAvailability } from './transport/mqtt-availability.js';
import { hubStateTopic, mqttInputs } from './transport/mqtt-inputs.js';
import { HubState } from './transport/hub-state.js';
import { redactUrl } from './redact-url.js';
import { loadedUwsBuild, loadUws, type us_listen_socket } from './transport/uws.js';
import { attachWebSocket, type WsServer } from './transport/ws-server.js';

export interface RunningHub {
  readonly hub: Hub;
  readonly config: Config;
  readonly metrics: Metrics;
  /** The hub's error boundaries (main.ts reports process-level faults here too). */
  readonly faults: Faults;
  /** The HTTP/WebSocket port actually bound (PORT=0 picks a free one). */
  readonly port: number;
  readonly host: string;
  /** The broker the hub ingests from (the embedded one's address when MQTT_URL is unset). */
  readonly mqttUrl: string;
  readonly parts: { readonly broker: string; readonly storage: string; readonly presence: string; readonly fanout: string };
  /** Cluster mode: this instance's id (null when single-instance). */
  readonly instanceId: string | null;
  /** The REST route table (method, path, policy entry), for tests generated from it. */
  readonly routes: readonly Route[];
  stop(): Promise<void>;
}

const INGEST_READY_TIMEOUT_MS = 10_000;
/** Topic (device ids are at most 128 characters), packet id and properties of one packet. */
const BROKER_PACKET_MARGIN_BYTES = 4096;

/**
 * Wiring: chooses each part's implementation from the configuration (embedded when its URL is
 * unset), logs the choice once, restores state, and starts serving.
 */
export async function startHub(config: Config, log: Logger): Promise<RunningHub> {
  const uws = loadUws();
  const build = loadedUwsBuild();
  log.info({ uws: build }, `uWebSockets.js ${build.version} (${build.dependency})`);
  const metrics = createMetrics();
  metrics.buildInfo.set({ version: VERSION, commit: config.BUILD_COMMIT ?? '', node: process.version, uws_build: `${build.dependency}@${build.version}` }, 1);
  const faults = new Faults(log, metrics);
  const cleanup: (() => Promise<void> | void)[] = [];
  const stopAll = async () => {
    for (const step of cleanup.reverse()) {
      try {
        await step();
      } catch (error) {
        log.error({ err: (error as Error).message }, 'error during shutdown');
      }
    }
  };

  try {
    const database: Database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, log, holder: 'a Vigil hub' });
    cleanup.push(() => database.close());
    // Alert notifications (docs/notifications.md): the writer stores each transition's events in the outbox.
    const notifications = createNotifications(config, log, metrics, faults);
    const writer: Writer = createWriter(database, {
      notifications: notifications?.planner ?? null,
      batchRows: config.WRITER_BATCH_ROWS,
      flushMs: config.WRITER_FLUSH_MS,
      maxQueue: config.WRITER_MAX_QUEUE,
      deviceRefreshMs: config.WRITER_DEVICE_REFRESH_MS,
      log,
      metrics,
    });
    cleanup.push(() => writer.close());
    // Cluster mode: instances share Redis (membership, fan-out, history) and read every device topic, each handling its own devices.
    let bus: RedisBus | null = null;
    let membership: Membership | null = null;
    let cluster: Cluster | null = null;
    const instanceId = config.CLUSTER_ENABLED ? (config.CLUSTER_INSTANCE_ID ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64)) : null;
    metrics.clusterMembers.set(1); // a single instance sees itself; cluster mode counts the live members below
    if (instanceId !== null) {
      const clusterBus = new RedisBus(config.REDIS_URL!, log, faults);
      bus = clusterBus;
      cleanup.push(() => clusterBus.close());
      await clusterBus.connect();
      const members = new Membership({ redis: clusterBus.commands, keyPrefix: config.REDIS_KEY_PREFIX, instanceId, heartbeatMs: 1000, leaseMs: 3000, log, faults });
      membership = members;
      members.onChange(() => metrics.clusterMembers.set(members.list.length));
      cleanup.push(() => members.stop());
      await members.start();
      metrics.clusterMembers.set(members.list.length);
      cluster = new Cluster({ bus: clusterBus, membership: members, instanceId, keyPrefix: config.REDIS_KEY_PREFIX, log, metrics, faults });
    }
    const retention = scheduleRetention(
      database,
      { telemetryDays: config.RETENTION_DAYS, historyDays: config.HISTORY_RETENTION_DAYS, batchRows: 5000, pauseMs: 50 },
      config.RETENTION_CRON,
      log,
      faults,
      bus === null ? undefined : () => takeLease(bus.commands, `${config.REDIS_KEY_PREFIX}cluster:lease:retention`, instanceId!, 10 * 60_000),
    );
    cleanup.push(() => retention.stop());

    const presence: PresenceStore = config.REDIS_URL
      ? createRedisPresence({ url: config.REDIS_URL, keyPrefix: config.REDIS_KEY_PREFIX, sweepMs: config.PRESENCE_SWEEP_MS, log, faults })
      : createMemoryPresence({ sweepMs: config.PRESENCE_SWEEP_MS, faults });
    const hubRef: { current: Hub | null } = { current: null };
    const history = historySettings(config, metrics);
    const fanout: Fanout =
      bus === null
        ? createLocalFanout(history)
        : await createRedisFanout({
            ...history,
            bus,
            keyPrefix: config.REDIS_KEY_PREFIX,
            instanceId: instanceId!,
            log,
            metrics,
            faults,
            onFenced: (deviceId, storedSeq) => hubRef.current?.fenced(deviceId, storedSeq),
          });
    const hub = new Hub({
      fanout,
      ...(cluster !== null ? { cluster } : {}),
      massOffline: { minDevices: config.MASS_OFFLINE_MIN_DEVICES, share: config.MASS_OFFLINE_SHARE, windowMs: config.MASS_OFFLINE_WINDOW_S * 1000 },
      presence,
      sink: writer,
      metrics,
      faults,
      defaultTimeoutMs: config.OFFLINE_TIMEOUT_S * 1000,
      typeTimeoutsMs: typeTimeouts(config),
      learnedTimeouts: learnedTimeoutSettings(config),
      deviceLimits: { maxDevices: config.MAX_DEVICES, newPerS: config.MAX_NEW_DEVICES_PER_S, burst: config.MAX_NEW_DEVICES_BURST },
      flap: { transitions: config.FLAP_TRANSITIONS, windowMs: config.FLAP_WINDOW_S * 1000 },
      insights: {
        weights: healthWeights(config),
        step: config.HEALTH_STEP,
        zscoreMetrics: config.ANOMALY_ZSCORE_METRICS?.split(',') ?? [],
        zscoreThreshold: config.ANOMALY_ZSCORE,
        offlineAlertMs: config.OFFLINE_ALERT_MINUTES * 60_000,
      },
    });

    hubRef.current = hub;
    hub.owner.serve(healthOperations(hub.insights, database.db));
    // The rule set in force before the first message (ALERT_RULES stored as version 1 if none is).
    const rules = new RuleStore({ db: database.db, insights: hub.insights, owner: hub.owner, log, metrics, faults, pollMs: config.RULES_POLL_S * 1000 });
    cleanup.push(() => rules.stop());
    await rules.start(initialRuleSet(config));
    await restoreState(hub, database, log);
    if (notifications !== null) {
      await notifications.start({
        db: database.db,
        deviceTypeOf: (deviceId) => hub.registry.get(deviceId)?.type ?? null,
        instanceId,
        mayResend: bus === null ? async () => true : () => takeLease(bus.commands, `${config.REDIS_KEY_PREFIX}cluster:lease:alertmanager-resend`, instanceId!, config.ALERTMANAGER_RESEND_S * 1000 - 500),
      });
      cleanup.push(() => notifications.stop());
    }
    cleanup.push(watchDeviceBounds(hub.registry, metrics, log));
    watchAlertGauges(hub.insights, metrics);
    const sweeps = scheduleHealthSweeps(hub, config.HEALTH_SWEEP_CRON, config.OFFLINE_ALERT_CHECK_S * 1000, log, faults);
    cleanup.push(() => sweeps.stop());
    // Presence is judged only once the broker has delivered what it queued for this hub while it
    // was away (resolved when ingest reads its backlog marker, below): docs/presence.md.
    let backlogRead!: () => void;
    const judgeAfter = new Promise<void>((resolve) => {
      backlogRead = resolve;
    });
    hub.readingBacklog = true;
    await presence.start(hub, judgeAfter);
    cleanup.push(() => presence.stop());
    void judgeAfter.then(() => {
      hub.readingBacklog = false;
      return hub.reconcile().then(
        (reconciled) => log.info(reconciled, 'presence reconciled after the broker backlog'),
        (error: Error) => log.error({ err: error.message }, 'presence reconcile failed; expiries still judge every device'),
      );
    });

    const app = uws.App();
    const ingestRef: { current: MqttIngest | null } = { current: null };
    const checks: ReadinessCheck[] = [
      {
        name: 'broker',
        check: async () => ({ ok: ingestRef.current?.connected ?? false, detail: ingestRef.current?.connected ? 'connected' : 'not connected' }),
      },
      {
        name: 'storage',
        check: async () => {
          const { depth, retrying } = writer.stats();
          await database.ping();
          return { ok: !retrying, detail: `${database.kind}; write queue ${depth} rows${retrying ? ', writes failing and retrying' : ''}` };
        },
      },
      { name: 'presence', check: async () => presence.health() },
    ];
    if (bus !== null && membership !== null) {
      const clusterBus = bus;
      const members = membership;
      // Frames to other instances, forwards and owner API calls all ride on these connections.
      checks.push({
        name: 'cluster',
        check: async () => ({ ok: clusterBus.ready, detail: clusterBus.ready ? `${members.list.length} instance(s): ${members.list.join(', ')}` : 'redis connections down' }),
      });
    }
    const keys = new ApiKeyStore(database.db);
    await keys.load();
    // Keys created or revoked by the CLI or another instance take effect within KEY_RELOAD_MS; a
    // revoked key's WebSocket sessions end at the reload that finds it (docs/security.md). A failed
    // reload (the database away) keeps the keys last loaded, is reported, and is retried.
    const keyReload = setInterval(faults.guard('key_reload', () => keys.refresh()), config.KEY_RELOAD_MS);
    keyReload.unref();
    cleanup.push(() => clearInterval(keyReload));
    const tokens = new WsTokens(config.WS_TOKEN_SECRET, config.WS_TOKEN_TTL_S * 1000);
    const jwt = JwtVerifier.fromSettings(jwtSettings(config), (outcome) => metrics.jwtVerifications.inc({ outcome }));
    const access = accessPolicy(config, keys, tokens, jwt);
    const list = (value: string | undefined) => value?.split(',').map((o) => o.trim()).filter(Boolean) ?? [];
    const corsOrigins = new Set(list(config.CORS_ORIGINS));
    const hostAllowed = hostRule(config.HOST, list(config.ALLOWED_HOSTS));
    const security: HttpSecurity = {
      keys,
      jwt,
      authRequired: access.authRequired,
      limiter: new RateLimiter(config.HTTP_RATE_PER_S, config.HTTP_RATE_BURST),
      corsOrigins,
      hostAllowed,
      maxBodyBytes: config.HTTP_MAX_BODY_BYTES,
      metrics,
      maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
      faults,
    };
    // Where device messages enter, from MQTT and HTTP: in a cluster, whether this instance handles each.
    const ingestHandle: { current: MqttIngest | null } = { current: null };
    const ownership =
      cluster === null || bus === null || membership === null
        ? null
        : new StreamOwnership({ bus, membership, instanceId: instanceId!, keyPrefix: config.REDIS_KEY_PREFIX, log, metrics, faults, probeMs: config.CLUSTER_PROBE_MS, handoffTimeoutMs: config.CLUSTER_HANDOFF_TIMEOUT_MS });
    const router = cluster === null || ownership === null ? undefined : new IngestRouter(cluster, ownership, hub.registry, metrics, (topic, payload, at) => ingestHandle.current?.handle(topic, payload, at, true), faults);
    if (router !== undefined) cleanup.push(() => router.stop());
    const entry = new IngestEntry({ hub, owner: hub.owner, router, limits: telemetryLimits(config), maxReadingAgeMs: config.RETENTION_DAYS * 86_400_000 });
    const bounds = { maxPageItems: config.HTTP_MAX_PAGE_ITEMS, maxRangeMs: config.MAX_QUERY_RANGE_DAYS * 86_400_000, maxRows: config.MAX_QUERY_ROWS, refused: (code: string) => metrics.httpRefused.inc({ code }) };
    const routes: Route[] = [
      ...probeRoutes(checks, metrics),
      ...statusRoutes({ hub, presence, database, bounds }),
      ...healthRoutes(hub, database),
      ...ingestRoutes(hub, entry, database, config),
      ...adminRoutes(keys, tokens, log),
      ...ruleRoutes(rules, bounds.refused),
      ...commandRoutes(hub, database),
      ...notificationRoutes(database.db, notifications?.planner.sinks.map((s) => s.name) ?? []),
      ...dashboardRoutes(),
    ];
    routes.push(openApiRoute(routes, VERSION));
    const ws: WsServer = attachWebSocket(
      app,
      hub,
      {
        maxFrameBytes: config.WS_MAX_FRAME_BYTES,
        maxSubscriptions: config.WS_MAX_SUBSCRIPTIONS,
        maxMessagesPerSecond: config.WS_MAX_MESSAGES_PER_S,
        lagBytes: config.WS_LAG_BYTES,
        slowDeadlineMs: config.WS_SLOW_CLIENT_DEADLINE_S * 1000,
        maxConnections: config.WS_MAX_CONNECTIONS,
        maxConnectionsPerAddress: config.WS_MAX_CONNECTIONS_PER_IP,
        exemptAddresses: new Set(config.WS_CONNECTION_LIMIT_EXEMPT?.split(',').map((a) => a.trim()) ?? []),
        maxUnauthenticated: config.WS_MAX_UNAUTHENTICATED,
        maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
        idleTimeoutS: config.WS_IDLE_TIMEOUT_S,
        maxBackpressureBytes: config.WS_MAX_BACKPRESSURE_BYTES,
        lagCheckMs: config.WS_LAG_CHECK_MS,
      },
      log,
      metrics,
      { ...access.ws, keys, hostAllowed, corsOrigins },
      faults,
    );
    // After /ws: every other request goes through the route table.
    mountRoutes(app, routes, security, log);
    await fanout.start(ws.delivery);
    cleanup.push(() => fanout.stop());
    hub.summaries.publish = ws.publishSummary;
    const peersOfSummaries = bus === null ? null : await summaryPeers(bus, config.REDIS_KEY_PREFIX, instanceId!, metrics);
    hub.summaries.start({ intervalMs: config.FLEET_SUMMARY_INTERVAL_MS, chunk: config.FLEET_SUMMARY_CHUNK, paceBytes: config.WS_LAG_BYTES / 4 }, peersOfSummaries);
    cleanup.push(() => hub.summaries.stop());

    const listenSocket = await listen(app, config.HOST, config.PORT);
    const port = uws.us_socket_local_port(listenSocket);
    cleanup.push(() => {
      ws.stop();
      uws.us_listen_socket_close(listenSocket);
    });
    // Runs before the writer closes (cleanup is reversed): clients go first, then data is flushed.
    cleanup.push(() => ws.closeAll());

    let broker: EmbeddedBroker | null = null;
    if (!config.MQTT_URL) {
      broker = await startEmbeddedBroker(config.MQTT_HOST, config.MQTT_PORT, embeddedBrokerMaxPacket(config), () => metrics.brokerOversizePackets.inc());
      const embedded = broker;
      cleanup.push(() => embedded.stop());
    }
    const mqttUrl = config.MQTT_URL ?? broker!.url;
    const unserved = hub.owner.services.unserved();
    if (unserved.length > 0) throw new Error(`owner API operations nobody serves: ${unserved.join(', ')}`);
    if (cluster !== null) await cluster.start((op, deviceId, body) => hub.owner.answer(op, deviceId, body));
    const stateTopic = hubStateTopic(config, instanceId);
    const hubState = stateTopic === null ? null : new HubState(stateTopic, config.AVAILABILITY_FORMAT, metrics, log);
    const ingest = startMqttIngest(
      {
        inputs: mqttInputs(config, instanceId),
        will: hubState?.will,
        onConnected: hubState === null ? undefined : () => hubState.connected(),
        url: mqttUrl,
        topicPrefix: config.MQTT_TOPIC_PREFIX,
        // Each instance needs its own session on the broker.
        clientId: instanceId !== null && config.MQTT_CLIENT_ID === 'vigil-hub' ? `vigil-${instanceId}` : config.MQTT_CLIENT_ID,
        entry,
        control: ownership ?? undefined,
        qos: config.MQTT_QOS as 0 | 1,
        // Cluster mode: a clean session on every connection, so the stream holds nothing older than
        // the members marker this instance reads first (docs/scaling.md).
        clean: instanceId !== null || config.MQTT_CLEAN_SESSION,
        username: config.MQTT_USERNAME,
        password: config.MQTT_PASSWORD,
        protocolVersion: (config.MQTT_PROTOCOL ?? (broker ? 4 : 5)) as 4 | 5,
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
    ingestRef.current = ingest;
    ingestHandle.current = ingest;
    const backlogWait = setTimeout(() => {
      log.warn({ waitedS: config.PRESENCE_BACKLOG_WAIT_S }, 'broker backlog not confirmed read; judging presence now');
      backlogRead();
    }, config.PRESENCE_BACKLOG_WAIT_S * 1000);
    backlogWait.unref();
    cleanup.push(() => clearTimeout(backlogWait));
    void ingest.backlogRead().then((ms) => {
      clearTimeout(backlogWait);
      metrics.backlogReadSeconds.set(ms / 1000);
      log.info({ ms: Math.round(ms) }, 'broker backlog read; judging presence');
      backlogRead();
    });
    hub.commandPublisher = (deviceId, payload) => ingest.publishCommand(deviceId, payload);
    cleanup.push(() => hub.commands.stop());
    cleanup.push(() => ingest.stop());
    if (ownership !== null) {
      await ownership.start(ingest);
      // Runs first at stop: leave through the stream and hand the devices over while still reading it.
      cleanup.push(() => ownership.leave(config.CLUSTER_HANDOFF_TIMEOUT_MS * 2));
    }
    // Retained availability per device and the hub's own state (docs/presence.md#what-the-hub-publishes).
    const publish = (topic: string, payload: string, retain: boolean) => ingest.publish(topic, payload, retain);
    if (hubState !== null) {
      hubState.publish = publish;
      cleanup.push(() => hubState.stop()); // runs before ingest.stop (cleanup is reversed)
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
      cleanup.push(() => {
        hub.observer = null;
        availability.stop();
      });
    }
    await waitForIngest(ingest, log);

    const parts = {
      broker: broker ? `embedded aedes on ${broker.url}` : `external ${redactUrl(mqttUrl)}`,
      storage: database.kind === 'pglite' ? `embedded PGlite in ${config.DATA_DIR}` : 'PostgreSQL',
      presence: presence.kind === 'memory' ? 'in-process deadline heap' : 'Redis key expiry + deadline sweep',
      fanout: fanout.kind === 'local' ? 'in-process (single instance)' : `Redis pub/sub, instance ${instanceId} of ${membership?.list.length} (every instance reads every device topic)`,
    };
    log.info({ parts, ws: `ws://${config.HOST}:${port}/ws` }, `Vigil listening on http://${config.HOST}:${port}`);
    if (keys.everIssued && keys.size === 0 && !config.ALLOW_ANONYMOUS) {
      log.warn('every API key is revoked: authentication stays on and no key is valid; create one with npm run keys -- create --scope admin');
    }
    if (jwt !== null) {
      log.info({ hs256: config.JWT_HS256_SECRET !== undefined, jwks: config.JWT_JWKS_URL === undefined ? null : redactUrl(config.JWT_JWKS_URL) }, 'JWTs accepted (docs/security.md): authentication is required');
    }
    if (!access.authRequired()) {
      log.warn(
        access.loopback
          ? 'no API key exists: serving without authentication on loopback only (create one with npm run keys -- create)'
          : 'ALLOW_ANONYMOUS=true: serving without authentication on a non-loopback address',
      );
    }

    let stopped: Promise<void> | null = null;
    return {
      hub,
      config,
      metrics,
      faults,
      port,
      host: config.HOST,
      mqttUrl,
      parts,
      instanceId,
      routes,
      stop: () => (stopped ??= stopAll()),
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * The embedded broker's largest packet: the largest telemetry payload or command the hub accepts
 * (commands are published through the broker too: their bodies may reach HTTP_MAX_BODY_BYTES), plus
 * room for the topic, packet id and MQTT 5 properties. Larger ones close the sender's connection.
 */
export function embeddedBrokerMaxPacket(config: Config): number {
  return Math.max(config.MAX_PAYLOAD_BYTES, config.HTTP_MAX_BODY_BYTES) + BROKER_PACKET_MARGIN_BYTES;
}

/**
 * The registry comes back from the database, so the first snapshot after a restart is right; at
 * most MAX_DEVICES of them (the most recently heard), saying so when more are stored.
 */
async function restoreState(hub: Hub, database: Database, log: Logger): Promise<void> {
  const { maxDevices } = hub.registry.limits;
  const { states, stored: total } = await loadDeviceStates(database.db, maxDevices);
  if (total > maxDevices) {
    log.warn(
      { stored: total, restored: states.length, maxDevices },
      'more devices stored than MAX_DEVICES: the most recently heard were restored, the others are refused until some are deleted or MAX_DEVICES is raised',
    );
  }
  for (const stored of states) {
    const state = hub.registry.adopt(stored.id);
    if (typeof state === 'string') break;
    state.lastSeen = stored.lastSeen;
    state.telemetry = stored.lastTelemetry;
    state.timeoutMs = stored.offlineTimeoutS === null ? null : stored.offlineTimeoutS * 1000;
    state.type = stored.type;
    state.name = stored.name;
    if (stored.status === 'online' || stored.status === 'offline') hub.registry.setStatus(state, stored.status);
  }
  for (const alert of await loadActiveAlerts(database.db)) hub.insights.restoreAlert(alert);
  for (const command of await loadPendingCommands(database.db)) hub.commands.restore(command);
  for (const [deviceId, health] of await loadLatestHealth(database.db)) hub.insights.restoreHealth(deviceId, health);
}

function listen(app: ReturnType<ReturnType<typeof loadUws>['App']>, host: string, port: number): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (socket) resolve(socket);
      else reject(new Error(`cannot listen on ${host}:${port} (PORT in use or HOST not an address of this machine)`));
    });
  });
}

async function waitForIngest(ingest: MqttIngest, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), INGEST_READY_TIMEOUT_MS);
  });
  const outcome = await Promise.race([ingest.ready().then(() => 'ready' as const), timeout]);
  clearTimeout(timer);
  if (outcome === 'timeout') log.warn('MQTT broker not reachable yet; the hub serves and keeps retrying (/readyz says not ready)');
}

/** MAX_PAYLOAD_BYTES, MAX_METRIC_KEYS, MAX_FUTURE_SKEW_S and MAX_METRIC_DEPTH, for MQTT and HTTP ingest alike. */
function telemetryLimits(config: Config): TelemetryLimits {
  return { maxPayloadBytes: config.MAX_PAYLOAD_BYTES, maxMetricKeys: config.MAX_METRIC_KEYS, maxFutureSkewMs: config.MAX_FUTURE_SKEW_S * 1000, maxMetricDepth: config.MAX_METRIC_DEPTH };
}
