import { and, count, desc, eq, gte, lt } from 'drizzle-orm';
import type { TransitionReason } from '../domain/device-status.js';
import type { Telemetry } from '../domain/telemetry.js';
import type { VigilDb } from './database.js';
import { devices, statusChanges } from './schema/index.js';

export interface StoredDeviceState {
  readonly id: string;
  readonly type: string | null;
  readonly name: string | null;
  readonly status: 'online' | 'offline' | 'unknown';
  readonly lastSeen: number | null;
  readonly firstSeen: number;
  readonly offlineTimeoutS: number | null;
  readonly lastTelemetry: Telemetry | null;
}

/** The whole registry, read once at start so the hub's first snapshots are right. */
export async function loadDeviceStates(db: VigilDb): Promise<StoredDeviceState[]> {
  const rows = await db.select().from(devices);
  return rows.map((row) => ({
    id: row.id,
    type: row.type,
    name: row.name,
    status: row.status,
    lastSeen: row.lastSeen?.getTime() ?? null,
    firstSeen: row.firstSeen.getTime(),
    offlineTimeoutS: row.offlineTimeoutS,
    lastTelemetry: row.lastTelemetry ? { deviceId: row.id, ...row.lastTelemetry } : null,
  }));
}

export interface HistoryQuery {
  readonly limit: number;
  /** Only changes at or after this time (epoch ms). */
  readonly since?: number;
  /** Only changes strictly before this time (epoch ms): the cursor for the next page. */
  readonly before?: number;
}

export interface StatusHistoryEntry {
  readonly status: 'online' | 'offline';
  readonly previous: 'online' | 'offline' | null;
  readonly reason: TransitionReason;
  readonly lastSeen: number | null;
  readonly at: number;
}

/** A device's status changes, newest first, one page at a time. */
export async function getStatusHistory(
  db: VigilDb,
  deviceId: string,
  query: HistoryQuery,
): Promise<{ history: StatusHistoryEntry[]; totalRecords: number; hasMore: boolean }> {
  const where = and(
    eq(statusChanges.deviceId, deviceId),
    query.since === undefined ? undefined : gte(statusChanges.at, new Date(query.since)),
    query.before === undefined ? undefined : lt(statusChanges.at, new Date(query.before)),
  );
  const [rows, totals] = await Promise.all([
    db.select().from(statusChanges).where(where).orderBy(desc(statusChanges.at), desc(statusChanges.id)).limit(query.limit + 1),
    db.select({ n: count() }).from(statusChanges).where(where),
  ]);
  const page = rows.slice(0, query.limit);
  return {
    history: page.map((r) => ({
      status: r.status,
      previous: r.previous,
      reason: r.reason,
      lastSeen: r.lastSeen?.getTime() ?? null,
      at: r.at.getTime(),
    })),
    totalRecords: totals[0]?.n ?? 0,
    hasMore: rows.length > query.limit,
  };
}
