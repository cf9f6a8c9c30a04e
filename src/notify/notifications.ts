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
import type { Sink } from './sink.js';
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

/**
 * Notifications (docs/notifications.md), or null when no ALERT_WEBHOOK_URL or ALERTMANAGER_URL is
 * set: then the writer stores nothing in the outbox and nothing polls it.
 */
export function createNotifications(config: Config, log: Logger, metrics: Metrics, faults: Faults): Notifications | null {
  const limits = { timeoutMs: config.NOTIFY_TIMEOUT_MS, maxBodyBytes: config.NOTIFY_MAX_BODY_BYTES };
  const key = config.ALERT_WEBHOOK_SECRET === undefined ? null : signingKey(config.ALERT_WEBHOOK_SECRET);
  const filter = { minSeverity: config.ALERT_WEBHOOK_MIN_SEVERITY, types: list(config.ALERT_WEBHOOK_TYPES) };
  const webhooks = list(config.ALERT_WEBHOOK_URL).map((url, i) => new WebhookSink(`webhook-${i + 1}`, url, key, filter, limits));
  const alertmanagers = list(config.ALERTMANAGER_URL).map((url, i) => new AlertmanagerSink(`alertmanager-${i + 1}`, url, limits));
  const sinks: Sink[] = [...webhooks, ...alertmanagers];
  if (sinks.length === 0) return null;
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
        { sinks: sinks.map((s) => `${s.name} → ${s.target}`), signed: key !== null, minSeverity: filter.minSeverity, types: filter.types, deviceEvents: planner.deviceEvents },
        'notifications on: delivered from the outbox (docs/notifications.md)',
      );
    },
    async stop() {
      resend?.stop();
      await loop?.stop();
    },
  };
}
