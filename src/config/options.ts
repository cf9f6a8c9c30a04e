import { ruleSetSchema, type RuleSetDocument } from '../domain/rule-set.js';
import { DEFAULT_WEIGHTS, type Weights } from '../domain/health-score.js';
import { learnedTimeoutSettings } from '../domain/learned-timeout.js';
import type { HubSettings } from '../hub/hub-options.js';
import { ConfigError } from './config-error.js';
import type { Config } from './schema.js';

/** Config to options: each part's settings read from the configuration, beside it (the composition root calls these). */

/** HEALTH_WEIGHTS over the defaults. */
export function healthWeights(config: Config): Weights {
  const weights: Record<string, number> = { ...DEFAULT_WEIGHTS };
  for (const pair of config.HEALTH_WEIGHTS?.split(',') ?? []) {
    const [name, weight] = pair.split('=');
    weights[name!] = Number(weight);
  }
  return weights as Weights;
}

/**
 * ALERT_RULES: the initial rule set (used while the database holds none): a JSON array of rules
 * (for every device) or a whole rule set `{"rules":…,"device_types":…,"devices":…}`
 * (docs/health-and-alerts.md); errors name the rule and field. Null when unset.
 */
export function initialRuleSet(config: Config): RuleSetDocument | null {
  if (!config.ALERT_RULES) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(config.ALERT_RULES);
  } catch {
    throw new ConfigError('invalid configuration:\n  ALERT_RULES: not valid JSON (expected an array of rules or a rule set)');
  }
  const parsed = ruleSetSchema.safeParse(Array.isArray(raw) ? { rules: raw } : raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ALERT_RULES${Array.isArray(raw) ? `[${i.path.slice(1).join('.')}]` : `.${i.path.join('.')}`}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** `sensor=1500,tracker=30` → Map of device type → timeout in ms. */
export function typeTimeouts(config: Config): Map<string, number> {
  const map = new Map<string, number>();
  for (const pair of config.DEVICE_TYPE_TIMEOUTS?.split(',') ?? []) {
    const [type, seconds] = pair.split('=');
    map.set(type!, Number(seconds) * 1000);
  }
  return map;
}

/** The comma-separated list of a setting, trimmed, empty entries dropped. */
export const listSetting = (value: string | undefined): string[] => value?.split(',').map((v) => v.trim()).filter(Boolean) ?? [];

/** The batched storage writer (WRITER_*). */
export function writerSettings(config: Config) {
  return { batchRows: config.WRITER_BATCH_ROWS, flushMs: config.WRITER_FLUSH_MS, maxQueue: config.WRITER_MAX_QUEUE, deviceRefreshMs: config.WRITER_DEVICE_REFRESH_MS };
}

/** Data retention (RETENTION_*, HISTORY_RETENTION_DAYS): rows deleted in batches with a pause between them. */
export function retentionSettings(config: Config) {
  return { telemetryDays: config.RETENTION_DAYS, historyDays: config.HISTORY_RETENTION_DAYS, batchRows: 5000, pauseMs: 50 };
}

/** The configuration's hub settings, in the hub's units (ms, shares, lists). */
export function hubSettings(config: Config): HubSettings {
  return {
    defaultTimeoutMs: config.OFFLINE_TIMEOUT_S * 1000,
    typeTimeoutsMs: typeTimeouts(config),
    learnedTimeouts: learnedTimeoutSettings(config),
    deviceLimits: { maxDevices: config.MAX_DEVICES, newPerS: config.MAX_NEW_DEVICES_PER_S, burst: config.MAX_NEW_DEVICES_BURST },
    flap: { transitions: config.FLAP_TRANSITIONS, windowMs: config.FLAP_WINDOW_S * 1000 },
    massOffline: { minDevices: config.MASS_OFFLINE_MIN_DEVICES, share: config.MASS_OFFLINE_SHARE, windowMs: config.MASS_OFFLINE_WINDOW_S * 1000 },
    insights: {
      weights: healthWeights(config),
      step: config.HEALTH_STEP,
      zscoreMetrics: config.ANOMALY_ZSCORE_METRICS?.split(',') ?? [],
      zscoreThreshold: config.ANOMALY_ZSCORE,
      offlineAlertMs: config.OFFLINE_ALERT_MINUTES * 60_000,
    },
  };
}

/** Per-connection and server-wide WebSocket limits (WS_*). */
export function webSocketLimits(config: Config) {
  return {
    maxFrameBytes: config.WS_MAX_FRAME_BYTES,
    maxSubscriptions: config.WS_MAX_SUBSCRIPTIONS,
    maxMessagesPerSecond: config.WS_MAX_MESSAGES_PER_S,
    lagBytes: config.WS_LAG_BYTES,
    slowDeadlineMs: config.WS_SLOW_CLIENT_DEADLINE_S * 1000,
    maxConnections: config.WS_MAX_CONNECTIONS,
    maxConnectionsPerAddress: config.WS_MAX_CONNECTIONS_PER_IP,
    exemptAddresses: new Set(listSetting(config.WS_CONNECTION_LIMIT_EXEMPT)),
    maxUnauthenticated: config.WS_MAX_UNAUTHENTICATED,
    maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
    idleTimeoutS: config.WS_IDLE_TIMEOUT_S,
    maxBackpressureBytes: config.WS_MAX_BACKPRESSURE_BYTES,
    lagCheckMs: config.WS_LAG_CHECK_MS,
  };
}

/** Bounds of REST answers: page sizes, time ranges and rows per query. */
export function queryBounds(config: Config) {
  return { maxPageItems: config.HTTP_MAX_PAGE_ITEMS, maxRangeMs: config.MAX_QUERY_RANGE_DAYS * 86_400_000, maxRows: config.MAX_QUERY_ROWS };
}

/** Bounds of one telemetry message (MAX_PAYLOAD_BYTES, MAX_METRIC_*, MAX_FUTURE_SKEW_S). */
export function telemetryLimits(config: Config) {
  return { maxPayloadBytes: config.MAX_PAYLOAD_BYTES, maxMetricKeys: config.MAX_METRIC_KEYS, maxFutureSkewMs: config.MAX_FUTURE_SKEW_S * 1000, maxMetricDepth: config.MAX_METRIC_DEPTH };
}

/** Topic (device ids are at most 128 characters), packet id and properties of one packet. */
const BROKER_PACKET_MARGIN_BYTES = 4096;

/**
 * The embedded broker's largest packet: the largest telemetry payload or command the hub accepts
 * (commands are published through the broker too: their bodies may reach HTTP_MAX_BODY_BYTES), plus
 * room for the topic, packet id and MQTT 5 properties. Larger ones close the sender's connection.
 */
export function embeddedBrokerMaxPacket(config: Config): number {
  return Math.max(config.MAX_PAYLOAD_BYTES, config.HTTP_MAX_BODY_BYTES) + BROKER_PACKET_MARGIN_BYTES;
}
