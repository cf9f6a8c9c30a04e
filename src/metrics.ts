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
  // Typed by their label names, so `inc({ kind })` with an unknown label does not compile.
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) => new Counter<L>({ name, help, labelNames, registers: r });
  const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) => new Gauge<L>({ name, help, labelNames, registers: r });
  const histogram = <L extends string = never>(name: string, help: string, labelNames: readonly L[], buckets: number[]) => new Histogram<L>({ name, help, labelNames, buckets, registers: r });
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
    messagesIn: counter('vigil_mqtt_messages_total', 'MQTT messages received, by kind (telemetry, heartbeat, status, other) and outcome (accepted, invalid, refused: a new device over MAX_DEVICES or MAX_NEW_DEVICES_PER_S, retained: a retained telemetry or heartbeat message, old news neither heard nor stored, ignored: a template id in MQTT_IGNORED_IDS)', ['kind', 'outcome']),
    invalidMessages: counter('vigil_invalid_messages_total', 'Rejected telemetry messages by reason', ['reason']),
    readingsSkipped: counter('vigil_readings_skipped_total', 'Readings left out of a stored telemetry message (the message was kept), by reason: string, null, array (not all numbers), not_finite, too_deep (beyond MAX_METRIC_DEPTH), bad_key (empty or over 64 characters), out_of_range (a mapped field of a template input its Vigil field refuses)', ['reason']),
    mqttPublished: counter('vigil_mqtt_published_total', 'Messages the hub published to the broker, by kind (availability, hub_state, discovery, ha_state) and outcome (sent, failed)', ['kind', 'outcome']),
    ingestToPush: histogram('vigil_ingest_to_push_seconds', 'Time from MQTT message receipt to WebSocket publish (sampled 1 in 64)', [], [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1]),
    mqttConnected: gauge('vigil_mqtt_connected', '1 when the ingest client is connected'),
    mqttWindowFull: counter('vigil_mqtt_window_full_total', 'Times the hub stopped reading from the broker because half of WRITER_MAX_QUEUE QoS 1 acknowledgements were held (waiting for storage): the broker sent past its window; it reads on as they are released'),
    mqttHeldAcks: gauge('vigil_mqtt_held_acks', 'QoS 1 messages processed but not yet acknowledged to the broker (waiting for storage)'),
    brokerOversizePackets: counter('vigil_broker_oversize_packets_total', 'Packets the embedded broker refused (connection closed) for being larger than MAX_PAYLOAD_BYTES or HTTP_MAX_BODY_BYTES plus 4 KiB'),
    mqttReconnects: counter('vigil_mqtt_reconnects_total', 'Ingest client reconnect attempts'),
    wsConnections: gauge('vigil_ws_connections', 'Open WebSocket connections'),
    wsUnauthenticated: gauge('vigil_ws_unauthenticated', 'WebSocket connections open that have not authenticated yet (WS_MAX_UNAUTHENTICATED)'),
    wsConnectionsTotal: counter('vigil_ws_connections_total', 'WebSocket connections accepted or refused, by outcome (accepted, refused_limit, refused_address_limit, refused_unauthenticated_limit, refused_headers, refused_auth, refused_origin, refused_host, refused_shutdown)', ['outcome']),
    wsSubscriptions: gauge('vigil_ws_subscriptions', 'Device subscriptions held by WebSocket clients (subscribe_all counts one)'),
    wsClientErrors: counter('vigil_ws_client_errors_total', 'Errors answered to WebSocket clients, by code', ['code']),
    wsCloses: counter('vigil_ws_closes_total', 'Connections closed by the hub, by reason', ['reason']),
    wsLaggingClients: gauge('vigil_ws_lagging_clients', 'Clients currently behind (updates conflated to the newest per device)'),
    wsLagEpisodes: counter('vigil_ws_lag_episodes_total', 'Times a client fell behind'),
    wsConflated: counter('vigil_ws_conflated_frames_total', 'Frames replaced by a newer one for a lagging client before they were sent'),
    presenceTransitions: counter('vigil_presence_transitions_total', 'Device status transitions, by new status and reason', ['status', 'reason']),
    backlogReadSeconds: gauge('vigil_presence_backlog_read_seconds', 'At start: time until the broker had delivered what it queued for the hub (presence was judged after it)'),
    expiryLag: histogram('vigil_presence_expiry_lag_seconds', 'Delay between a device deadline and the offline transition', [], [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30]),
    httpRefused: counter('vigil_http_refused_total', 'HTTP requests refused, by code (missing_key, invalid_key, invalid_token (a JWT refused), jwt_keys_unavailable, forbidden, rate_limited, headers_too_large, not_found, method_not_allowed, malformed_path, origin_not_allowed, unsupported_media_type, misdirected_request; query bounds: too_big, invalid_cursor, range_too_large, too_many_rows; bodies: body_too_large, invalid_json, unstorable_text; schema refusals (422): invalid_body, invalid_query)', ['code']),
    jwtVerifications: counter('vigil_jwt_verifications_total', 'JWTs presented (REST, WebSocket upgrade, auth message), by outcome: accepted, malformed, expired, bad_signature, bad_claims, unknown_key, keys_unavailable (JWT_JWKS_URL did not answer)', ['outcome']),
    alerts: counter('vigil_alert_transitions_total', 'Alert transitions (raised, updated, acknowledged, cleared) by severity', ['transition', 'severity']),
    alertsActive: gauge('vigil_alerts_active', 'Alerts raised or acknowledged and not cleared, by severity (read at each scrape)', ['severity']),
    fanoutFenced: counter('vigil_fanout_fenced_total', 'Frames not published across instances because another instance had numbered the device further (ownership moved)'),
    fanoutPublishFailures: counter('vigil_fanout_publish_failures_total', 'Frames that could not be published to Redis'),
    historyDropped: counter('vigil_history_dropped_frames_total', 'Frames pushed out of a resume window (scope: device or fleet; reason: window = older than the window, bytes = over the byte cap)', ['scope', 'reason']),
    historyBytes: gauge('vigil_history_bytes', 'Bytes of frames kept in process memory for resuming (scope: device, over all followed devices, or fleet); updated every 10 s; a cluster keeps them in Redis instead', ['scope']),
    resumes: counter('vigil_ws_resumes_total', 'Resume requests (channel: device or fleet), by whether the missed frames were recovered', ['channel', 'recovered']),
    fanoutRemoteFrames: counter('vigil_fanout_remote_frames_total', 'Frames received from other instances'),
    clusterNotOwned: counter('vigil_cluster_not_owned_total', 'Device messages skipped because another instance owns the device (every instance reads every message)'),
    clusterMarkers: counter('vigil_cluster_markers_total', 'Members markers proposed (out), read from the MQTT stream (in: each is a membership change point), or dropped as malformed (invalid)', ['direction']),
    clusterHandoffTimeouts: counter('vigil_cluster_handoff_timeouts_total', 'Membership changes whose previous owners did not confirm their handoff in time'),
    clusterUnsynced: counter('vigil_cluster_unsynced_total', 'Messages handled before their device seq could be read back'),
    clusterRpcTimeouts: counter('vigil_cluster_rpc_timeouts_total', 'Snapshot requests the owner did not answer in time'),
    clusterInvalidCalls: counter('vigil_cluster_invalid_calls_total', 'Owner API calls refused by schema: request (a body this instance was asked with) or answer (what another instance answered)', ['op', 'side']),
    clusterMembers: gauge('vigil_cluster_members', 'Live hub instances this instance sees'),
    massOfflineIncidents: counter('vigil_mass_offline_incidents_total', 'Offline waves reported as one incident'),
    devicesOnline: gauge('vigil_devices_online', 'Devices currently online (read at each scrape)'),
    devicesOffline: gauge('vigil_devices_offline', 'Devices currently offline (read at each scrape; known minus online minus offline have no status yet)'),
    devicesKnown: gauge('vigil_devices_known', 'Devices known to this hub (held in its registry; read at each scrape)'),
    devicesMax: gauge('vigil_devices_max', 'MAX_DEVICES: most devices the registry holds'),
    devicesRefused: counter('vigil_devices_refused_total', 'Messages (or settings) of a new device not registered: device_limit (MAX_DEVICES reached), new_device_rate (over MAX_NEW_DEVICES_PER_S)', ['reason']),
    writerQueueDepth: gauge('vigil_writer_queue_depth', 'Rows waiting to be written'),
    writerRows: counter('vigil_writer_rows_total', 'Rows written, by table', ['table']),
    writerFlushSeconds: histogram('vigil_writer_flush_seconds', 'Duration of one batch write', [], [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5]),
    writerRetries: counter('vigil_writer_retries_total', 'Failed batch writes retried'),
    writerRejectedRows: counter('vigil_writer_rejected_rows_total', 'Rows the database refused (a data error, never retried), moved to dead_letters; by table and SQLSTATE', ['table', 'reason']),
    writerDeadLetterDropped: counter('vigil_writer_dead_letter_dropped_total', 'Refused rows whose dead-letter row was refused too, so they were dropped (logged)', ['table']),
    writerDropped: counter('vigil_writer_dropped_total', 'Telemetry rows dropped because WRITER_MAX_QUEUE readings were waiting (QoS 0: at QoS 1 held acknowledgements keep the queue below it)'),
    fleetSummaryFrames: counter('vigil_fleet_summary_frames_total', 'fleet_summary frames built, by kind (full: a snapshot chunk, built at most once per interval; delta: published once per interval to every summary subscriber)', ['kind']),
    fleetSummaryBytes: counter('vigil_fleet_summary_bytes_total', 'Bytes of fleet_summary frames built, by kind (full, delta)', ['kind']),
    fleetSummaryDevices: histogram('vigil_fleet_summary_devices', 'Devices per fleet_summary frame (at most FLEET_SUMMARY_CHUNK)', [], [0, 1, 10, 100, 1000, 10_000]),
    fleetSummarySubscribers: gauge('vigil_fleet_summary_subscribers', 'WebSocket sessions following fleet summaries on this instance'),
    fleetSummaryPeerBatches: counter('vigil_fleet_summary_peer_batches_total', 'Cluster mode: batches of changed summaries sent to (out) or received from (in) the other instances, batches Redis did not take (failed), and rows or batches refused as malformed (invalid)', ['direction']),
    internalErrors: counter('vigil_internal_errors_total', 'Faults caught at an error boundary (the hub went on), by entry: http, ws, mqtt, cluster, fanout, presence, a timer or job, process', ['entry']),
    buildInfo: gauge('vigil_build_info', 'Always 1; the labels say which build runs: version (package.json), commit (BUILD_COMMIT, empty when unset), node (process.version), uws_build (the uWebSockets.js build loaded)', ['version', 'commit', 'node', 'uws_build']),
    notifications: counter('vigil_notifications_total', 'Notification outcomes per sink (webhook-<hash of its URL>, alertmanager-<hash>): delivered, retried (failed, retry scheduled), dead (gave up), dropped (outbox full), pruned (dead rows past NOTIFY_OUTBOX_MAX_ROWS), sink_removed (pending rows of a URL no longer configured, after NOTIFY_REMOVED_SINK_GRACE_S), filtered (severity or type filter), resent and resend_failed (Alertmanager re-sends)', ['sink', 'outcome']),
    notificationOutboxDepth: gauge('vigil_notification_outbox_depth', 'Notifications pending in the outbox, per sink (read from the database every NOTIFY_POLL_MS)', ['sink']),
    notificationOutboxDead: gauge('vigil_notification_outbox_dead', 'Notifications given up on (dead) and kept in the outbox for 7 days, per sink', ['sink']),
    notificationOldestPending: gauge('vigil_notification_oldest_pending_seconds', 'Age of the oldest pending notification, per sink (0 when none is pending)', ['sink']),
    ruleSetVersion: gauge('vigil_rule_set_version', 'The alert rule-set version in force on this instance (0: built-in rules only)'),
    ruleSetChanges: counter('vigil_rule_set_changes_total', 'Rule-set versions this instance applied, by how it learned of them (local, notice, poll, start), and stored versions refused as invalid (invalid)', ['outcome']),
    ingestPaused: gauge('vigil_ingest_paused', '1 while the write queue is full (WRITER_MAX_QUEUE, until it drains to half): QoS 1 messages wait unacknowledged, so the broker holds the rest'),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
