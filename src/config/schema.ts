import { z } from 'zod';
import { SEVERITIES } from '../domain/alert-rules.js';

/**
 * Every setting of the hub, read from the environment and overridable by `--flag value` or
 * `--flag=value` on the command line (flag = variable name in kebab-case: `--offline-timeout-s 30`).
 * The README's configuration table is written from this schema: keep both in step.
 */
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

function protocolOf(url: string): string | null {
  try {
    return new URL(url).protocol;
  } catch {
    return null;
  }
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const optionalUrl = (protocols: string[]) =>
  z
    .string()
    .url()
    // Runs even when .url() failed, which has said so already: a TypeError here would carry the
    // value, password and all, out of loadConfig into an uncaught error's stack trace.
    .refine((u) => {
      const protocol = protocolOf(u);
      return protocol === null || protocols.includes(protocol);
    }, {
      message: `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`,
    })
    .optional();

/** One or more URLs, comma-separated (each must parse and use one of `protocols`). */
const urlList = (protocols: string[]) =>
  z
    .string()
    .refine(
      (list) =>
        list.split(',').every((u) => {
          const protocol = protocolOf(u.trim());
          return protocol !== null && protocols.includes(protocol);
        }),
      { message: `comma-separated URLs starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
    )
    .optional();

export const configSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(0, 65535).default(8080),
  MQTT_URL: optionalUrl(['mqtt:', 'mqtts:', 'tcp:', 'ws:', 'wss:']),
  MQTT_PORT: int(0, 65535).default(1883),
  MQTT_HOST: z.string().min(1).default('127.0.0.1'),
  MQTT_TOPIC_PREFIX: z
    .string()
    .regex(/^[^#+]*[^/#+]$/, 'no wildcards and no trailing slash')
    .default('devices'),
  MQTT_CLIENT_ID: z.string().min(1).max(64).default('vigil-hub'),
  MQTT_QOS: z.enum(['0', '1']).transform(Number).default(1),
  MQTT_CLEAN_SESSION: bool.default(false),
  MQTT_PROTOCOL: z.enum(['4', '5']).transform(Number).optional(),
  MQTT_RECEIVE_MAXIMUM: int(1, 65_535).default(1000),
  MQTT_SESSION_EXPIRY_S: int(0, 4_294_967_295).default(86_400),
  MQTT_USERNAME: z.string().optional(),
  MQTT_PASSWORD: z.string().optional(),
  REDIS_URL: optionalUrl(['redis:', 'rediss:']),
  REDIS_KEY_PREFIX: z.string().default('vigil:'),
  DATABASE_URL: optionalUrl(['postgres:', 'postgresql:']),
  DATA_DIR: z.string().min(1).default('./data'),
  OFFLINE_TIMEOUT_S: z.coerce.number().positive().max(7 * 24 * 3600).default(60),
  PRESENCE_SWEEP_MS: int(50, 60_000).default(250),
  PRESENCE_BACKLOG_WAIT_S: z.coerce.number().min(0).max(3600).default(30),
  DEVICE_TYPE_TIMEOUTS: z
    .string()
    .regex(/^([A-Za-z0-9._:-]+=\d+(\.\d+)?)(,[A-Za-z0-9._:-]+=\d+(\.\d+)?)*$/, 'a list like sensor=1500,tracker=30 (type=seconds)')
    .optional(),
  FLAP_TRANSITIONS: int(2, 100).default(6),
  FLAP_WINDOW_S: int(1, 86_400).default(300),
  HEALTH_WEIGHTS: z
    .string()
    .regex(/^(availability|battery|signal|error_rate|response_time|freshness)=\d+(\.\d+)?(,(availability|battery|signal|error_rate|response_time|freshness)=\d+(\.\d+)?)*$/, 'a list like availability=30,battery=20 (components: availability, battery, signal, error_rate, response_time, freshness)')
    .optional(),
  HEALTH_STEP: z.coerce.number().min(0).max(100).default(1),
  HEALTH_SWEEP_CRON: z.string().min(9).default('*/5 * * * *'),
  ALERT_RULES: z.string().optional(),
  RULES_POLL_S: z.coerce.number().min(0.5).max(3600).default(5),
  LEARNED_TIMEOUTS: bool.default(false),
  LEARNED_TIMEOUT_SAMPLES: int(4, 1024).default(64),
  LEARNED_TIMEOUT_MIN_SAMPLES: int(2, 1024).default(8),
  LEARNED_TIMEOUT_PERCENTILE: z.coerce.number().min(50).max(100).default(95),
  LEARNED_TIMEOUT_FACTOR: z.coerce.number().min(1).max(100).default(3),
  LEARNED_TIMEOUT_MIN_S: z.coerce.number().positive().max(7 * 24 * 3600).default(10),
  LEARNED_TIMEOUT_MAX_S: z.coerce.number().positive().max(7 * 24 * 3600).default(86_400),
  ANOMALY_ZSCORE_METRICS: z.string().regex(/^[A-Za-z0-9._:-]+(,[A-Za-z0-9._:-]+)*$/).optional(),
  ANOMALY_ZSCORE: z.coerce.number().min(1).max(100).default(4),
  OFFLINE_ALERT_MINUTES: z.coerce.number().min(0).max(10_080).default(5),
  OFFLINE_ALERT_CHECK_S: z.coerce.number().min(0.1).max(3600).default(10),
  ALLOW_ANONYMOUS: bool.default(false),
  CORS_ORIGINS: z.string().optional(),
  /** Host names (besides IP addresses, localhost and HOST) this hub answers to; others get 421. */
  ALLOWED_HOSTS: z.string().optional(),
  /** How often keys are re-read from the database (revocations by the CLI or another instance). */
  KEY_RELOAD_MS: int(100, 60_000).default(1000),
  WS_TOKEN_TTL_S: int(1, 3600).default(60),
  HTTP_RATE_PER_S: z.coerce.number().positive().max(1_000_000).default(100),
  HTTP_RATE_BURST: z.coerce.number().positive().max(1_000_000).default(200),
  WS_TOKEN_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  WS_AUTH_TIMEOUT_S: z.coerce.number().positive().max(300).default(5),
  // JWTs from the user's own app (src/security/jwt.ts, docs/security.md): either setting turns them on.
  JWT_HS256_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  JWT_JWKS_URL: optionalUrl(['https:', 'http:']),
  JWT_ISSUER: z.string().min(1).max(1024).optional(),
  JWT_AUDIENCE: z.string().min(1).max(1024).optional(),
  JWT_CLOCK_SKEW_S: int(0, 600).default(30),
  JWT_SCOPE_CLAIM: z.string().regex(/^[A-Za-z0-9_:.\/-]{1,128}$/, 'a claim name').default('scope'),
  JWT_SCOPE_PREFIX: z.string().max(64).default(''),
  JWT_DEVICES_CLAIM: z.string().regex(/^[A-Za-z0-9_:.\/-]{1,128}$/, 'a claim name').default('vigil_devices'),
  JWT_JWKS_TIMEOUT_MS: int(100, 60_000).default(5000),
  JWT_JWKS_CACHE_S: int(10, 86_400).default(600),
  JWT_JWKS_COOLDOWN_S: int(1, 3600).default(30),
  HTTP_MAX_BODY_BYTES: int(1024, 16 * 1024 * 1024).default(64 * 1024),
  HTTP_MAX_HEADER_BYTES: int(1024, 120 * 1024).default(16 * 1024),
  HTTP_MAX_PAGE_ITEMS: int(1, 100_000).default(5000),
  MAX_QUERY_RANGE_DAYS: z.coerce.number().positive().max(36_500).default(31),
  MAX_QUERY_ROWS: int(100, 10_000_000).default(100_000),
  /** The commit the build came from (vigil_build_info{commit}); the Dockerfile sets it from a build argument. */
  BUILD_COMMIT: z.string().regex(/^[0-9a-f]{7,64}$/i, '7-64 hexadecimal digits (a git commit)').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MAX_PAYLOAD_BYTES: int(64, 1024 * 1024).default(16 * 1024),
  MAX_METRIC_KEYS: int(1, 1024).default(64),
  MAX_FUTURE_SKEW_S: int(0, 86_400).default(300),
  MAX_DEVICES: int(1, 50_000_000).default(250_000),
  MAX_NEW_DEVICES_PER_S: int(1, 10_000_000).default(1000),
  MAX_NEW_DEVICES_BURST: int(1, 50_000_000).default(10_000),
  WS_MAX_FRAME_BYTES: int(64, 16 * 1024 * 1024).default(16 * 1024),
  WS_MAX_SUBSCRIPTIONS: int(1, 1_000_000).default(1000),
  WS_MAX_MESSAGES_PER_S: int(1, 1_000_000).default(100),
  WS_MAX_CONNECTIONS: int(1, 1_000_000).default(19_000),
  WS_MAX_CONNECTIONS_PER_IP: int(1, 1_000_000).default(256),
  WS_CONNECTION_LIMIT_EXEMPT: z.string().regex(/^[0-9A-Fa-f.:]+(,[0-9A-Fa-f.:]+)*$/, 'comma-separated IP addresses').optional(),
  WS_MAX_UNAUTHENTICATED: int(1, 1_000_000).default(1000),
  WS_IDLE_TIMEOUT_S: int(8, 960).default(120),
  WS_LAG_BYTES: int(1024, 1024 * 1024 * 1024).default(256 * 1024),
  WS_MAX_BACKPRESSURE_BYTES: int(64 * 1024, 1024 * 1024 * 1024).default(8 * 1024 * 1024),
  WS_SLOW_CLIENT_DEADLINE_S: z.coerce.number().positive().max(3600).default(30),
  WS_LAG_CHECK_MS: int(10, 10_000).default(100),
  FLEET_SUMMARY_INTERVAL_MS: int(100, 60_000).default(1000),
  FLEET_SUMMARY_CHUNK: int(10, 10_000).default(1000),
  FLEET_COUNTS_SAMPLE_MS: int(100, 600_000).default(10_000),
  /** Units of sensor metrics the dashboard does not know: `flow=L/min,soil=%` (GET /metric-units). */
  METRIC_UNITS: z
    .string()
    .regex(/^([A-Za-z0-9._:-]{1,64}=[^,=]{1,16})(,[A-Za-z0-9._:-]{1,64}=[^,=]{1,16})*$/, 'name=unit pairs separated by commas, e.g. flow=L/min,soil=%')
    .optional(),
  RETENTION_DAYS: z.coerce.number().positive().max(36_500).default(30),
  HISTORY_RETENTION_DAYS: z.coerce.number().positive().max(36_500).default(365),
  RETENTION_CRON: z.string().min(9).default('17 * * * *'),
  WRITER_BATCH_ROWS: int(1, 50_000).default(500),
  WRITER_FLUSH_MS: int(1, 60_000).default(200),
  WRITER_MAX_QUEUE: int(100, 10_000_000).default(100_000),
  WRITER_DEVICE_REFRESH_MS: int(100, 600_000).default(5000),
  CLUSTER_ENABLED: bool.default(false),
  CLUSTER_INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, '1-64 characters of [A-Za-z0-9._-]')
    .optional(),
  // Resume windows (docs/websocket-protocol.md#resuming-after-a-reconnect). HISTORY_SIZE (a frame
  // count) is gone: a count covers fewer messages the more frame kinds a message brings.
  HISTORY_WINDOW_S: int(0, 3600).default(120),
  HISTORY_MAX_BYTES_PER_DEVICE: int(1024, 64 * 1024 * 1024).default(65_536),
  FLEET_HISTORY_WINDOW_S: int(0, 3600).default(120),
  FLEET_HISTORY_MAX_BYTES: int(64 * 1024, 1024 * 1024 * 1024).default(8 * 1024 * 1024),
  CLUSTER_PROBE_MS: int(50, 10_000).default(250),
  CLUSTER_HANDOFF_TIMEOUT_MS: int(50, 60_000).default(1000),
  /** An instance starting as the cluster's only live member judges no device offline for this long (docs/presence.md). */
  CLUSTER_START_GRACE_S: z.coerce.number().min(0).max(3600).default(60),
  HISTORY_TTL_S: int(1, 86_400).default(300),
  MASS_OFFLINE_MIN_DEVICES: int(2, 10_000_000).default(20),
  MASS_OFFLINE_SHARE: z.coerce.number().min(0).max(1).default(0.3),
  MASS_OFFLINE_WINDOW_S: z.coerce.number().positive().max(3600).default(10),
  // Notifications (docs/notifications.md): webhooks with CloudEvents and Alertmanager, from the outbox.
  ALERT_WEBHOOK_URL: urlList(['http:', 'https:']),
  ALERT_WEBHOOK_SECRET: z.string().min(16, 'at least 16 characters').optional(),
  ALERT_WEBHOOK_MIN_SEVERITY: z.enum(SEVERITIES).default('info'),
  ALERT_WEBHOOK_TYPES: z
    .string()
    .regex(/^[A-Za-z0-9._*-]+(,[A-Za-z0-9._*-]+)*$/, 'a list like vigil.alert.raised,vigil.alert.cleared (a trailing * matches a prefix)')
    .optional(),
  ALERT_WEBHOOK_DEVICE_STATUS: bool.default(false),
  ALERTMANAGER_URL: urlList(['http:', 'https:']),
  ALERTMANAGER_RESEND_S: int(5, 3600).default(60),
  PUBLIC_URL: optionalUrl(['http:', 'https:']),
  NOTIFY_POLL_MS: int(50, 60_000).default(1000),
  NOTIFY_TIMEOUT_MS: int(100, 60_000).default(5000),
  NOTIFY_CONCURRENCY: int(1, 64).default(4),
  // Unset: derived from the three below so that NOTIFY_MAX_AGE_S governs (notify/delivery-loop.ts attemptsWithin).
  NOTIFY_MAX_ATTEMPTS: int(1, 1_000_000).optional(),
  NOTIFY_MAX_AGE_S: int(60, 30 * 86_400).default(86_400),
  NOTIFY_RETRY_BASE_MS: int(10, 600_000).default(1000),
  NOTIFY_RETRY_MAX_MS: int(100, 86_400_000).default(300_000),
  NOTIFY_REMOVED_SINK_GRACE_S: int(0, 30 * 86_400).default(3600),
  NOTIFY_OUTBOX_MAX_ROWS: int(100, 10_000_000).default(100_000),
  NOTIFY_MAX_BODY_BYTES: int(1024, 1024 * 1024).default(64 * 1024),
  // Fleets as they are, and what the hub publishes back over MQTT (docs/presence.md).
  MAX_METRIC_DEPTH: int(1, 16).default(4),
  MQTT_PRESET: z.string().regex(/^[a-z0-9]+(,[a-z0-9]+)*$/, 'a list like zigbee2mqtt,tasmota').optional(),
  MQTT_TELEMETRY_TOPICS: z.string().optional(),
  MQTT_HEARTBEAT_TOPICS: z.string().optional(),
  MQTT_AVAILABILITY_TOPICS: z.string().optional(),
  MQTT_AVAILABILITY_HOLD: z.string().optional(),
  MQTT_FIELD_MAP: z.string().optional(),
  MQTT_IGNORED_IDS: z.string().optional(),
  MAX_TOPIC_TEMPLATES: int(1, 256).default(16),
  AVAILABILITY_PUBLISH: bool.default(true),
  AVAILABILITY_FORMAT: z.enum(['text', 'json']).default('text'),
  HUB_STATE_TOPIC: z.string().regex(/^[^#+$][^#+]*$/, 'a topic without wildcards (may hold {instance}), or off').optional(),
  HA_DISCOVERY: bool.default(false),
  HA_DISCOVERY_PREFIX: z.string().regex(/^[^#+$/][^#+]*[^#+/]$|^[^#+$/]$/, 'a topic prefix without wildcards or trailing slash').default('homeassistant'),
  HA_NODE_ID: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, '1-64 characters of [A-Za-z0-9_-]').optional(),
  HA_STATE_INTERVAL_S: z.coerce.number().min(1).max(3600).default(10),
});

export type Config = z.infer<typeof configSchema>;

export type ConfigKey = keyof Config;
