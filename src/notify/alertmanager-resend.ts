import { sql } from 'drizzle-orm';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { resultRows, type VigilDb } from '../storage/database.js';
import { alertEvent, isAlertEventData, type EventContext } from './cloudevents.js';
import { toPostableAlert, type AlertmanagerSink, type PostableAlert } from './alertmanager-sink.js';
import { pendingSubjects } from '../storage/outbox-repository.js';
import type { Alert } from '../domain/alert.js';

export interface ResendOptions {
  readonly db: VigilDb;
  readonly sinks: readonly AlertmanagerSink[];
  readonly everyMs: number;
  readonly context: Omit<EventContext, 'deviceTypeOf'>;
  readonly deviceTypeOf: (deviceId: string) => string | null;
  /** Cluster mode: true for the one instance that re-sends this round (a Redis lease). */
  readonly mayRun: () => Promise<boolean>;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly faults: Faults;
}

/** Active alerts re-sent per round at most, in posts of RESEND_CHUNK. */
const RESEND_MAX_ALERTS = 10_000;
const RESEND_CHUNK = 500;

/**
 * Alertmanager forgets an alert it has not heard of for `resolve_timeout` (5 min by default), as
 * Prometheus re-sends firing alerts: every ALERTMANAGER_RESEND_S, the active alerts (from the
 * database, so every instance's alerts, sent by one instance in a cluster) are posted again. An
 * alert whose device has events still pending in the outbox is left to the outbox, so a re-send
 * never overtakes a clear and fires it again. Best effort: a failed round is counted and the next
 * round repeats it.
 */
export function scheduleAlertmanagerResend(opts: ResendOptions): { stop(): void } {
  const round = async () => {
    if (!(await opts.mayRun())) return;
    const rows = await activeAlerts(opts.db);
    for (const sink of opts.sinks) {
      const waiting = await pendingSubjects(opts.db, sink.name);
      const alerts: PostableAlert[] = [];
      for (const { alert, deviceType } of rows) {
        if (waiting.has(alert.deviceId)) continue;
        const event = alertEvent(alert, alert.state === 'acknowledged' ? 'acknowledged' : 'raised', {
          ...opts.context,
          deviceTypeOf: (id) => opts.deviceTypeOf(id) ?? deviceType,
        });
        if (isAlertEventData(event.data)) alerts.push(toPostableAlert(event.data));
      }
      for (const chunk of chunksWithin(alerts, RESEND_CHUNK, sink.maxBodyBytes)) {
        const outcome = await sink.postAlerts(chunk);
        opts.metrics.notifications.inc({ sink: sink.name, outcome: outcome.ok ? 'resent' : 'resend_failed' });
        if (!outcome.ok) {
          opts.log.warn({ sink: sink.name, target: sink.target, err: outcome.error }, 'Alertmanager re-send failed; the next round repeats it');
          // The receiver failing stops the round; one post it can never take (too large) does not.
          if (outcome.retry) break;
        }
      }
    }
  };
  const timer = setInterval(opts.faults.guard('notifications', round), opts.everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * The alerts in posts of at most `maxCount` whose JSON array stays within `maxBytes`
 * (NOTIFY_MAX_BODY_BYTES): 500 alerts of ~400 bytes are ~200 KB, and a post over the bound is never
 * sent, so cutting by count alone re-sent nothing once a few hundred alerts were active. An alert
 * too large alone goes in a post of its own (refused there, counted as resend_failed).
 */
export function chunksWithin(alerts: readonly PostableAlert[], maxCount: number, maxBytes: number): PostableAlert[][] {
  const chunks: PostableAlert[][] = [];
  let chunk: PostableAlert[] = [];
  let bytes = 2; // []
  for (const alert of alerts) {
    const size = Buffer.byteLength(JSON.stringify(alert)) + 1; // and its comma
    if (chunk.length > 0 && (chunk.length >= maxCount || bytes + size > maxBytes)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 2;
    }
    chunk.push(alert);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

async function activeAlerts(db: VigilDb): Promise<{ alert: Alert; deviceType: string | null }[]> {
  const result = await db.execute(sql`
    select a.id, a.device_id, a.type, a.severity, a.state, a.data,
      extract(epoch from a.raised_at) * 1000 as raised, extract(epoch from a.updated_at) * 1000 as updated,
      extract(epoch from a.acknowledged_at) * 1000 as acked, a.acknowledged_by, d.type as device_type
    from alerts a left join devices d on d.id = a.device_id
    where a.state in ('raised', 'acknowledged')
    order by a.raised_at
    limit ${RESEND_MAX_ALERTS}`);
  type Row = { id: string; device_id: string; type: string; severity: Alert['severity']; state: Alert['state']; data: Record<string, unknown>; raised: string | number; updated: string | number; acked: string | number | null; acknowledged_by: string | null; device_type: string | null };
  return resultRows<Row>(result).map((r) => ({
    alert: {
      id: r.id,
      deviceId: r.device_id,
      type: r.type,
      severity: r.severity,
      state: r.state,
      data: r.data,
      raisedAt: Number(r.raised),
      updatedAt: Number(r.updated),
      clearedAt: null,
      acknowledgedAt: r.acked === null ? null : Number(r.acked),
      acknowledgedBy: r.acknowledged_by,
    },
    deviceType: r.device_type,
  }));
}
