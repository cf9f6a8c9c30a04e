import { sql } from 'drizzle-orm';
import type { VigilDb } from './database.js';

export interface RetentionPolicy {
  /** telemetry and health scores */
  readonly telemetryDays: number;
  /** status changes, cleared alerts and dead letters */
  readonly historyDays: number;
  readonly batchRows: number;
  /** Pause between batches, so writers are never locked out for long. */
  readonly pauseMs: number;
}

export interface RetentionResult {
  readonly telemetry: number;
  readonly healthScores: number;
  readonly statusChanges: number;
  readonly alerts: number;
  readonly deadLetters: number;
}

/** Rows a statement changed: postgres.js reports `count`, PGlite `affectedRows`. */
function count(result: unknown): number {
  const r = result as { count?: number; affectedRows?: number };
  return Number(r.count ?? r.affectedRows ?? 0);
}

/**
 * Deletes rows older than the policy in small batches (by ctid, so each statement touches at most
 * `batchRows` rows and holds its locks briefly). Active alerts are never deleted.
 */
export async function applyRetention(db: VigilDb, policy: RetentionPolicy, now = Date.now()): Promise<RetentionResult> {
  const telemetryCutoff = new Date(now - policy.telemetryDays * 86_400_000).toISOString();
  const historyCutoff = new Date(now - policy.historyDays * 86_400_000).toISOString();
  const inBatches = async (deleteBatch: () => Promise<number>) => {
    let total = 0;
    for (;;) {
      const deleted = await deleteBatch();
      total += deleted;
      if (deleted < policy.batchRows) return total;
      await new Promise((r) => setTimeout(r, policy.pauseMs));
    }
  };
  const limit = policy.batchRows;
  return {
    telemetry: await inBatches(async () =>
      count(await db.execute(sql`delete from telemetry where ctid in (select ctid from telemetry where ts < ${telemetryCutoff}::timestamptz limit ${limit})`)),
    ),
    healthScores: await inBatches(async () =>
      count(await db.execute(sql`delete from health_scores where ctid in (select ctid from health_scores where ts < ${telemetryCutoff}::timestamptz limit ${limit})`)),
    ),
    statusChanges: await inBatches(async () =>
      count(await db.execute(sql`delete from status_changes where ctid in (select ctid from status_changes where at < ${historyCutoff}::timestamptz limit ${limit})`)),
    ),
    alerts: await inBatches(async () =>
      count(
        await db.execute(
          sql`delete from alerts where ctid in (select ctid from alerts where state = 'cleared' and updated_at < ${historyCutoff}::timestamptz limit ${limit})`,
        ),
      ),
    ),
    deadLetters: await inBatches(async () =>
      count(await db.execute(sql`delete from dead_letters where ctid in (select ctid from dead_letters where failed_at < ${historyCutoff}::timestamptz limit ${limit})`)),
    ),
  };
}
