import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every counter the hub exposes at /metrics, in one place so that each limit and outcome is
 * counted once and named consistently (`vigil_` prefix). One instance per hub, so tests that run
 * several hubs in one process do not share counts.
 */
export function createMetrics() {
  const registry = new Registry();
  // Standard names (process_cpu_seconds_total, nodejs_eventloop_lag_seconds…): the ones every
  // Node.js dashboard and alert rule expects.
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  const beforeCollectHooks: (() => void)[] = [];
  return {
    registry,
    /** Hot-path counts kept in plain numbers are added to their counters before each scrape. */
    beforeCollect(hook: () => void): void {
      beforeCollectHooks.push(hook);
    },
    /** The Prometheus text, with every batched count added first. */
    async scrape(): Promise<string> {
      for (const hook of beforeCollectHooks) hook();
      return registry.metrics();
    },
    messagesIn: new Counter({
      name: 'vigil_mqtt_messages_total',
      help: 'MQTT messages received, by kind (telemetry, heartbeat, status, other) and outcome (accepted, invalid, refused: a new device over MAX_DEVICES or MAX_NEW_DEVICES_PER_S)',
      labelNames: ['kind', 'outcome'] as const,
      registers: r,
    }),
    invalidMessages: new Counter({
      name: 'vigil_invalid_messages_total',
      help: 'Rejected telemetry messages by reason',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    readingsSkipped: new Counter({
      name: 'vigil_readings_skipped_total',
      help: 'Readings left out of a stored telemetry message (the message was kept), by reason: string, null, array, not_finite, too_deep (beyond MAX_METRIC_DEPTH), bad_key (empty or over 64 characters)',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    mqttPublished: new Counter({
      name: 'vigil_mqtt_published_total',
      help: 'Messages the hub published to the broker, by kind (availability, hub_state, discovery, ha_state) and outcome (sent, failed)',
      labelNames: ['kind', 'outcome'] as const,
      registers: r,
    }),
    ingestToPush: new Histogram({
      name: 'vigil_ingest_to_push_seconds',
      help: 'Time from MQTT message receipt to WebSocket publish (sampled 1 in 64)',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers: r,
    }),
    mqttConnected: new Gauge({ name: 'vigil_mqtt_connected', help: '1 when the ingest client is connected', registers: r }),
    mqttHeldAcks: new Gauge({
      name: 'vigil_mqtt_held_acks',
      help: 'QoS 1 messages processed but not yet acknowledged to the broker (waiting for storage)',
      registers: r,
    }),
    brokerOversizePackets: new Counter({
      name: 'vigil_broker_oversize_packets_total',
      help: 'Packets the embedded broker refused (connection closed) for being larger than MAX_PAYLOAD_BYTES or HTTP_MAX_BODY_BYTES plus 4 KiB',
      registers: r,
    }),
    mqttReconnects: new Counter({ name: 'vigil_mqtt_reconnects_total', help: 'Ingest client reconnect attempts', registers: r }),
    wsConnections: new Gauge({ name: 'vigil_ws_connections', help: 'Open WebSocket connections', registers: r }),
    wsUnauthenticated: new Gauge({ name: 'vigil_ws_unauthenticated', help: 'WebSocket connections open that have not authenticated yet (WS_MAX_UNAUTHENTICATED)', registers: r }),
    wsConnectionsTotal: new Counter({
      name: 'vigil_ws_connections_total',
      help: 'WebSocket connections accepted or refused, by outcome (accepted, refused_limit, refused_address_limit, refused_unauthenticated_limit, refused_headers, refused_auth, refused_origin, refused_host, refused_shutdown)',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    wsSubscriptions: new Gauge({
      name: 'vigil_ws_subscriptions',
      help: 'Device subscriptions held by WebSocket clients (subscribe_all counts one)',
      registers: r,
    }),
    wsClientErrors: new Counter({
      name: 'vigil_ws_client_errors_total',
      help: 'Errors answered to WebSocket clients, by code',
      labelNames: ['code'] as const,
      registers: r,
    }),
    wsCloses: new Counter({
      name: 'vigil_ws_closes_total',
      help: 'Connections closed by the hub, by reason',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    wsLaggingClients: new Gauge({
      name: 'vigil_ws_lagging_clients',
      help: 'Clients currently behind (updates conflated to the newest per device)',
      registers: r,
    }),
    wsLagEpisodes: new Counter({ name: 'vigil_ws_lag_episodes_total', help: 'Times a client fell behind', registers: r }),
    wsConflated: new Counter({
      name: 'vigil_ws_conflated_frames_total',
      help: 'Frames replaced by a newer one for a lagging client before they were sent',
      registers: r,
    }),
    presenceTransitions: new Counter({
      name: 'vigil_presence_transitions_total',
      help: 'Device status transitions, by new status and reason',
      labelNames: ['status', 'reason'] as const,
      registers: r,
    }),
    backlogReadSeconds: new Gauge({
      name: 'vigil_presence_backlog_read_seconds',
      help: 'At start: time until the broker had delivered what it queued for the hub (presence was judged after it)',
      registers: r,
    }),
    expiryLag: new Histogram({
      name: 'vigil_presence_expiry_lag_seconds',
      help: 'Delay between a device deadline and the offline transition',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: r,
    }),
    httpRefused: new Counter({
      name: 'vigil_http_refused_total',
      help: 'HTTP requests refused, by code (missing_key, invalid_key, invalid_token (a JWT refused), jwt_keys_unavailable, forbidden, rate_limited, headers_too_large, not_found, method_not_allowed, malformed_path, origin_not_allowed, unsupported_media_type, misdirected_request; query bounds: too_big, invalid_cursor, range_too_large, too_many_rows; bodies: body_too_large, invalid_json, unstorable_text; schema refusals (422): invalid_body, invalid_query)',
      labelNames: ['code'] as const,
      registers: r,
    }),
    jwtVerifications: new Counter({
      name: 'vigil_jwt_verifications_total',
      help: 'JWTs presented (REST, WebSocket upgrade, auth message), by outcome: accepted, malformed, expired, bad_signature, bad_claims, unknown_key, keys_unavailable (JWT_JWKS_URL did not answer)',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    alerts: new Counter({
      name: 'vigil_alert_transitions_total',
      help: 'Alert transitions (raised, updated, acknowledged, cleared) by severity',
      labelNames: ['transition', 'severity'] as const,
      registers: r,
    }),
    alertsActive: new Gauge({
      name: 'vigil_alerts_active',
      help: 'Alerts raised or acknowledged and not cleared, by severity (read at each scrape)',
      labelNames: ['severity'] as const,
      registers: r,
    }),
    fanoutFenced: new Counter({
      name: 'vigil_fanout_fenced_total',
      help: 'Frames not published across instances because another instance had numbered the device further (ownership moved)',
      registers: r,
    }),
    fanoutPublishFailures: new Counter({ name: 'vigil_fanout_publish_failures_total', help: 'Frames that could not be published to Redis', registers: r }),
    historyDropped: new Counter({
      name: 'vigil_history_dropped_frames_total',
      help: 'Frames pushed out of a resume window (scope: device or fleet; reason: window = older than the window, bytes = over the byte cap)',
      labelNames: ['scope', 'reason'] as const,
      registers: r,
    }),
    historyBytes: new Gauge({
      name: 'vigil_history_bytes',
      help: 'Bytes of frames kept in process memory for resuming (scope: device, over all followed devices, or fleet); updated every 10 s; a cluster keeps them in Redis instead',
      labelNames: ['scope'] as const,
      registers: r,
    }),
    resumes: new Counter({
      name: 'vigil_ws_resumes_total',
      help: 'Resume requests (channel: device or fleet), by whether the missed frames were recovered',
      labelNames: ['channel', 'recovered'] as const,
      registers: r,
    }),
    fanoutRemoteFrames: new Counter({ name: 'vigil_fanout_remote_frames_total', help: 'Frames received from other instances', registers: r }),
    clusterNotOwned: new Counter({ name: 'vigil_cluster_not_owned_total', help: 'Device messages skipped because another instance owns the device (every instance reads every message)', registers: r }),
    clusterMarkers: new Counter({
      name: 'vigil_cluster_markers_total',
      help: 'Members markers proposed (out), read from the MQTT stream (in: each is a membership change point), or dropped as malformed (invalid)',
      labelNames: ['direction'] as const,
      registers: r,
    }),
    clusterHandoffTimeouts: new Counter({ name: 'vigil_cluster_handoff_timeouts_total', help: 'Membership changes whose previous owners did not confirm their handoff in time', registers: r }),
    clusterUnsynced: new Counter({ name: 'vigil_cluster_unsynced_total', help: 'Messages handled before their device seq could be read back', registers: r }),
    clusterRpcTimeouts: new Counter({ name: 'vigil_cluster_rpc_timeouts_total', help: 'Snapshot requests the owner did not answer in time', registers: r }),
    clusterInvalidCalls: new Counter({
      name: 'vigil_cluster_invalid_calls_total',
      help: 'Owner API calls refused by schema: request (a body this instance was asked with) or answer (what another instance answered)',
      labelNames: ['op', 'side'] as const,
      registers: r,
    }),
    clusterMembers: new Gauge({ name: 'vigil_cluster_members', help: 'Live hub instances this instance sees', registers: r }),
    massOfflineIncidents: new Counter({ name: 'vigil_mass_offline_incidents_total', help: 'Offline waves reported as one incident', registers: r }),
    devicesOnline: new Gauge({ name: 'vigil_devices_online', help: 'Devices currently online (read at each scrape)', registers: r }),
    devicesOffline: new Gauge({ name: 'vigil_devices_offline', help: 'Devices currently offline (read at each scrape; known minus online minus offline have no status yet)', registers: r }),
    devicesKnown: new Gauge({ name: 'vigil_devices_known', help: 'Devices known to this hub (held in its registry; read at each scrape)', registers: r }),
    devicesMax: new Gauge({ name: 'vigil_devices_max', help: 'MAX_DEVICES: most devices the registry holds', registers: r }),
    devicesRefused: new Counter({
      name: 'vigil_devices_refused_total',
      help: 'Messages (or settings) of a new device not registered: device_limit (MAX_DEVICES reached), new_device_rate (over MAX_NEW_DEVICES_PER_S)',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    writerQueueDepth: new Gauge({ name: 'vigil_writer_queue_depth', help: 'Rows waiting to be written', registers: r }),
    writerRows: new Counter({
      name: 'vigil_writer_rows_total',
      help: 'Rows written, by table',
      labelNames: ['table'] as const,
      registers: r,
    }),
    writerFlushSeconds: new Histogram({
      name: 'vigil_writer_flush_seconds',
      help: 'Duration of one batch write',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: r,
    }),
    writerRetries: new Counter({ name: 'vigil_writer_retries_total', help: 'Failed batch writes retried', registers: r }),
    writerRejectedRows: new Counter({
      name: 'vigil_writer_rejected_rows_total',
      help: 'Rows the database refused (a data error, never retried), moved to dead_letters; by table and SQLSTATE',
      labelNames: ['table', 'reason'] as const,
      registers: r,
    }),
    writerDeadLetterDropped: new Counter({
      name: 'vigil_writer_dead_letter_dropped_total',
      help: 'Refused rows whose dead-letter row was refused too, so they were dropped (logged)',
      labelNames: ['table'] as const,
      registers: r,
    }),
    writerDropped: new Counter({
      name: 'vigil_writer_dropped_total',
      help: 'Rows dropped because the queue was full (ingest pauses first; this stays 0 unless pausing is off)',
      registers: r,
    }),
    fleetSummaryFrames: new Counter({
      name: 'vigil_fleet_summary_frames_total',
      help: 'fleet_summary frames built, by kind (full: a snapshot chunk, built at most once per interval; delta: published once per interval to every summary subscriber)',
      labelNames: ['kind'] as const,
      registers: r,
    }),
    fleetSummaryBytes: new Counter({ name: 'vigil_fleet_summary_bytes_total', help: 'Bytes of fleet_summary frames built, by kind (full, delta)', labelNames: ['kind'] as const, registers: r }),
    fleetSummaryDevices: new Histogram({
      name: 'vigil_fleet_summary_devices',
      help: 'Devices per fleet_summary frame (at most FLEET_SUMMARY_CHUNK)',
      buckets: [0, 1, 10, 100, 1000, 10_000],
      registers: r,
    }),
    fleetSummarySubscribers: new Gauge({ name: 'vigil_fleet_summary_subscribers', help: 'WebSocket sessions following fleet summaries on this instance', registers: r }),
    fleetSummaryPeerBatches: new Counter({
      name: 'vigil_fleet_summary_peer_batches_total',
      help: 'Cluster mode: batches of changed summaries sent to (out) or received from (in) the other instances, batches Redis did not take (failed), and rows or batches refused as malformed (invalid)',
      labelNames: ['direction'] as const,
      registers: r,
    }),
    internalErrors: new Counter({
      name: 'vigil_internal_errors_total',
      help: 'Faults caught at an error boundary (the hub went on), by entry: http, ws, mqtt, cluster, fanout, presence, a timer or job, process',
      labelNames: ['entry'] as const,
      registers: r,
    }),
    buildInfo: new Gauge({
      name: 'vigil_build_info',
      help: 'Always 1; the labels say which build runs: version (package.json), commit (BUILD_COMMIT, empty when unset), node (process.version), uws_build (the uWebSockets.js build loaded)',
      labelNames: ['version', 'commit', 'node', 'uws_build'] as const,
      registers: r,
    }),
    notifications: new Counter({
      name: 'vigil_notifications_total',
      help: 'Notification outcomes per sink (webhook-N, alertmanager-N): delivered, retried (failed, retry scheduled), dead (gave up), dropped (outbox full), pruned (dead rows past NOTIFY_OUTBOX_MAX_ROWS), filtered (severity or type filter), resent and resend_failed (Alertmanager re-sends)',
      labelNames: ['sink', 'outcome'] as const,
      registers: r,
    }),
    notificationOutboxDepth: new Gauge({
      name: 'vigil_notification_outbox_depth',
      help: 'Notifications pending in the outbox, per sink (read from the database every NOTIFY_POLL_MS)',
      labelNames: ['sink'] as const,
      registers: r,
    }),
    notificationOutboxDead: new Gauge({
      name: 'vigil_notification_outbox_dead',
      help: 'Notifications given up on (dead) and kept in the outbox for 7 days, per sink',
      labelNames: ['sink'] as const,
      registers: r,
    }),
    notificationOldestPending: new Gauge({
      name: 'vigil_notification_oldest_pending_seconds',
      help: 'Age of the oldest pending notification, per sink (0 when none is pending)',
      labelNames: ['sink'] as const,
      registers: r,
    }),
    ruleSetVersion: new Gauge({ name: 'vigil_rule_set_version', help: 'The alert rule-set version in force on this instance (0: built-in rules only)', registers: r }),
    ruleSetChanges: new Counter({
      name: 'vigil_rule_set_changes_total',
      help: 'Rule-set versions this instance applied, by how it learned of them (local, notice, poll, start), and stored versions refused as invalid (invalid)',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    ingestPaused: new Gauge({
      name: 'vigil_ingest_paused',
      help: '1 while the write queue is full (WRITER_MAX_QUEUE, until it drains to half): QoS 1 messages wait unacknowledged, so the broker holds the rest',
      registers: r,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
