import { hostname } from 'node:os';
import type { Config } from '../config.js';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { VigilDb } from '../storage/database.js';
import { AlertmanagerSink } from './alertmanager-sink.js';
import { scheduleAlertmanagerResend } from './alertmanager-resend.js';
import { DeliveryLoop, retryPolicyOf } from './delivery-loop.js';
import { NotificationPlanner } from './planner.js';
import { signingKey } from './signature.js';
import { sinkId, type Sink } from './sink.js';
import { WebhookSink } from './webhook-sink.js';

export interface NotificationDeps {
  readonly db: VigilDb;
  readonly deviceTypeOf: (deviceId: string) => string | null;
  /** Cluster mode: this instance's id; null when single-instance. */
  readonly instanceId: string | null;
  /** Whether this instance does this round of Alertmanager re-sends (a cluster lease; always true alone). */
  readonly mayResend: () => Promise<boolean>;
}

export interface Notifications {
  /** Handed to the writer: it asks which outbox rows announce each alert transition and status change. */
  readonly planner: NotificationPlanner;
  start(deps: NotificationDeps): Promise<void>;
  stop(): Promise<void>;
}

const list = (value: string | undefined) => value?.split(',').map((v) => v.trim()).filter(Boolean) ?? [];

/** A URL listed twice is one sink (one delivery per event), said once in the log. */
function unique<S extends Sink>(sinks: S[], log: Logger): S[] {
  const seen = new Set<string>();
  return sinks.filter((s) => {
    if (seen.has(s.name)) {
      log.warn({ sink: s.name, target: s.target }, 'a notification URL is listed twice: one sink, each event sent to it once');
      return false;
    }
    seen.add(s.name);
    return true;
  });
}

/**
 * Notifications (docs/notifications.md), or null when no ALERT_WEBHOOK_URL or ALERTMANAGER_URL is
 * set: then the writer stores nothing in the outbox and nothing polls it.
 */
export function createNotifications(config: Config, log: Logger, metrics: Metrics, faults: Faults): Notifications | null {
  const limits = { timeoutMs: config.NOTIFY_TIMEOUT_MS, maxBodyBytes: config.NOTIFY_MAX_BODY_BYTES };
  const key = config.ALERT_WEBHOOK_SECRET === undefined ? null : signingKey(config.ALERT_WEBHOOK_SECRET);
  const filter = { minSeverity: config.ALERT_WEBHOOK_MIN_SEVERITY, types: list(config.ALERT_WEBHOOK_TYPES) };
  const webhookUrls = list(config.ALERT_WEBHOOK_URL);
  const alertmanagerUrls = list(config.ALERTMANAGER_URL);
  const webhooks = unique(webhookUrls.map((url) => new WebhookSink(sinkId('webhook', url), url, key, filter, limits)), log);
  const alertmanagers = unique(alertmanagerUrls.map((url) => new AlertmanagerSink(sinkId('alertmanager', url), url, limits)), log);
  const sinks: Sink[] = [...webhooks, ...alertmanagers];
  if (sinks.length === 0) return null;
  // Rows stored by hubs that named sinks by position: `webhook-N` is the N-th URL of the list as it is now.
  const legacyNames = new Map<string, string>([
    ...webhookUrls.map((url, i) => [`webhook-${i + 1}`, sinkId('webhook', url)] as const),
    ...alertmanagerUrls.map((url, i) => [`alertmanager-${i + 1}`, sinkId('alertmanager', url)] as const),
  ]);
  // For logs: where each sink is in its list (the id alone does not say which URL it is).
  const places = new Map<string, string>([
    ...webhookUrls.map((url, i) => [sinkId('webhook', url), `ALERT_WEBHOOK_URL #${i + 1}`] as const),
    ...alertmanagerUrls.map((url, i) => [sinkId('alertmanager', url), `ALERTMANAGER_URL #${i + 1}`] as const),
  ]);
  const publicUrl = config.PUBLIC_URL?.replace(/\/+$/, '') ?? null;
  const context = { source: publicUrl ?? 'urn:vigil:hub', publicUrl };
  const planner = new NotificationPlanner(sinks, context, config.ALERT_WEBHOOK_DEVICE_STATUS, metrics);
  let loop: DeliveryLoop | null = null;
  let resend: { stop(): void } | null = null;
  return {
    planner,
    async start(deps) {
      planner.deviceTypeOf = deps.deviceTypeOf;
      loop = new DeliveryLoop({
        db: deps.db,
        sinks,
        planner,
        instance: deps.instanceId ?? hostname().slice(0, 64),
        pollMs: config.NOTIFY_POLL_MS,
        concurrency: config.NOTIFY_CONCURRENCY,
        requestTimeoutMs: config.NOTIFY_TIMEOUT_MS,
        maxRows: config.NOTIFY_OUTBOX_MAX_ROWS,
        retry: retryPolicyOf(config),
        removedSinkGraceMs: config.NOTIFY_REMOVED_SINK_GRACE_S * 1000,
        legacyNames,
        log,
        metrics,
        faults,
      });
      await loop.start();
      if (alertmanagers.length > 0) {
        resend = scheduleAlertmanagerResend({
          db: deps.db,
          sinks: alertmanagers,
          everyMs: config.ALERTMANAGER_RESEND_S * 1000,
          context,
          deviceTypeOf: deps.deviceTypeOf,
          mayRun: deps.mayResend,
          log,
          metrics,
          faults,
        });
      }
      log.info(
        { sinks: sinks.map((s) => `${s.name} (${places.get(s.name) ?? '?'}) → ${s.target}`), signed: key !== null, minSeverity: filter.minSeverity, types: filter.types, deviceEvents: planner.deviceEvents },
        'notifications on: delivered from the outbox (docs/notifications.md)',
      );
    },
    async stop() {
      resend?.stop();
      await loop?.stop();
    },
  };
}
