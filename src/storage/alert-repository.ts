import { and, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { Severity } from '../domain/alert-rules.js';
import { resultRows, type VigilDb } from './database.js';
import { alerts, healthScores } from './schema/index.js';
import type { Alert, ScoredHealth } from '../domain/alert.js';

const toAlert = (r: typeof alerts.$inferSelect): Alert => ({
  id: r.id,
  deviceId: r.deviceId,
  type: r.type,
  severity: r.severity,
  state: r.state,
  data: r.data,
  raisedAt: r.raisedAt.getTime(),
  updatedAt: r.updatedAt.getTime(),
  clearedAt: r.clearedAt?.getTime() ?? null,
  acknowledgedAt: r.acknowledgedAt?.getTime() ?? null,
  acknowledgedBy: r.acknowledgedBy,
});

/** Alerts not cleared, for the hub to hold again after a restart. */
export async function loadActiveAlerts(db: VigilDb): Promise<Alert[]> {
  const rows = await db.select().from(alerts).where(inArray(alerts.state, ['raised', 'acknowledged']));
  return rows.map(toAlert);
}

export interface AlertQuery {
  readonly state: 'active' | 'raised' | 'acknowledged' | 'cleared' | 'all';
  readonly deviceId?: string;
  /** Only alerts of these devices (a key limited to them). */
  readonly deviceIds?: readonly string[];
  readonly severity?: Severity;
  readonly limit: number;
  /** Only alerts raised before this (epoch ms): the next-page cursor. */
  readonly before?: number;
}

export async function listAlerts(db: VigilDb, q: AlertQuery): Promise<{ alerts: Alert[]; hasMore: boolean }> {
  const states =
    q.state === 'all' ? undefined : q.state === 'active' ? inArray(alerts.state, ['raised', 'acknowledged']) : eq(alerts.state, q.state);
  const rows = await db
    .select()
    .from(alerts)
    .where(
      and(
        states,
        q.deviceId ? eq(alerts.deviceId, q.deviceId) : undefined,
        q.deviceIds ? inArray(alerts.deviceId, [...q.deviceIds]) : undefined,
        q.severity ? eq(alerts.severity, q.severity) : undefined,
        q.before !== undefined ? lt(alerts.raisedAt, new Date(q.before)) : undefined,
      ),
    )
    .orderBy(desc(alerts.raisedAt))
    .limit(q.limit + 1);
  return { alerts: rows.slice(0, q.limit).map(toAlert), hasMore: rows.length > q.limit };
}

/** Each device's newest stored score, so the first snapshot after a restart has one. */
export async function loadLatestHealth(db: VigilDb): Promise<Map<string, ScoredHealth>> {
  const result = await db.execute(sql`
    select distinct on (device_id) device_id, extract(epoch from ts) * 1000 as at, score, components
    from health_scores order by device_id, ts desc`);
  const rows = resultRows<{ device_id: string; at: string | number; score: number; components: ScoredHealth['components'] }>(result);
  return new Map(rows.map((r) => [r.device_id, { score: Number(r.score), components: r.components, at: Number(r.at) }]));
}

/** Stored scores of a device since `from`, oldest first (for the trend). */
export async function healthTrend(db: VigilDb, deviceId: string, from: number): Promise<{ at: number; score: number }[]> {
  const rows = await db
    .select({ ts: healthScores.ts, score: healthScores.score })
    .from(healthScores)
    .where(and(eq(healthScores.deviceId, deviceId), sql`${healthScores.ts} >= ${new Date(from).toISOString()}::timestamptz`))
    .orderBy(healthScores.ts)
    .limit(1000);
  return rows.map((r) => ({ at: r.ts.getTime(), score: r.score }));
}
