import { and, asc, count, desc, eq, gte, lt, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import type { TransitionReason } from '../domain/device-status.js';
import { newReadings } from '../domain/readings.js';
import type { Telemetry } from '../domain/telemetry.js';
import type { VigilDb } from './database.js';
import { devices, statusChanges, telemetry, type StoredTelemetry } from './schema/index.js';

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

/**
 * The registry, read once at start so the hub's first snapshots are right: at most `limit` devices
 * (MAX_DEVICES), the most recently heard first, and how many are stored in all.
 */
export async function loadDeviceStates(db: VigilDb, limit: number): Promise<{ states: StoredDeviceState[]; stored: number }> {
  const [rows, [total]] = await Promise.all([
    db.select().from(devices).orderBy(sql`${devices.lastSeen} desc nulls last`, asc(devices.id)).limit(limit),
    db.select({ n: count() }).from(devices),
  ]);
  const states = rows.map((row) => ({
    id: row.id,
    type: row.type,
    name: row.name,
    status: row.status,
    lastSeen: row.lastSeen?.getTime() ?? null,
    firstSeen: row.firstSeen.getTime(),
    offlineTimeoutS: row.offlineTimeoutS,
    lastTelemetry: row.lastTelemetry ? restoredTelemetry(row.id, row.lastTelemetry) : null,
  }));
  return { states, stored: total?.n ?? states.length };
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
  const where = pageWindow(statusChanges.deviceId, statusChanges.at, deviceId, query);
  const [rows, totals] = await Promise.all([
    db.select().from(statusChanges).where(where).orderBy(desc(statusChanges.at), desc(statusChanges.id)).limit(query.limit + 1),
    db.select({ n: count() }).from(statusChanges).where(where),
  ]);
  return pageOf(rows, totals, query.limit, (r) => ({
    status: r.status,
    previous: r.previous,
    reason: r.reason,
    lastSeen: r.lastSeen?.getTime() ?? null,
    at: r.at.getTime(),
  }));
}

export interface TelemetryHistoryEntry {
  readonly ts: number;
  readonly batteryLevel: number | null;
  readonly rssi: number | null;
  readonly responseTimeMs: number | null;
  readonly errorRate: number | null;
  readonly metrics: Record<string, number> | null;
}

/** A device's telemetry, newest first, one page at a time (`before` is the cursor). */
export async function getTelemetryHistory(
  db: VigilDb,
  deviceId: string,
  query: HistoryQuery,
): Promise<{ history: TelemetryHistoryEntry[]; totalRecords: number; hasMore: boolean }> {
  const where = pageWindow(telemetry.deviceId, telemetry.ts, deviceId, query);
  const [rows, totals] = await Promise.all([
    db.select().from(telemetry).where(where).orderBy(desc(telemetry.ts)).limit(query.limit + 1),
    db.select({ n: count() }).from(telemetry).where(where),
  ]);
  return pageOf(rows, totals, query.limit, (r) => ({
    ts: r.ts.getTime(),
    batteryLevel: r.batteryLevel,
    rssi: r.rssi,
    responseTimeMs: r.responseTimeMs,
    errorRate: r.errorRate,
    metrics: r.metrics,
  }));
}

/** One device's rows in [since, before) of a history table, by its time column. */
function pageWindow(deviceColumn: AnyColumn, timeColumn: AnyColumn, deviceId: string, query: HistoryQuery): SQL | undefined {
  return and(
    eq(deviceColumn, deviceId),
    query.since === undefined ? undefined : gte(timeColumn, new Date(query.since)),
    query.before === undefined ? undefined : lt(timeColumn, new Date(query.before)),
  );
}

/** A page of `limit` rows read as limit + 1 (the extra one says there is more), with the window's total. */
function pageOf<R, T>(rows: readonly R[], totals: readonly { n: number }[], limit: number, toEntry: (row: R) => T): { history: T[]; totalRecords: number; hasMore: boolean } {
  return { history: rows.slice(0, limit).map(toEntry), totalRecords: totals[0]?.n ?? 0, hasMore: rows.length > limit };
}

export interface DeviceSettings {
  readonly type?: string | null | undefined;
  readonly name?: string | null | undefined;
  readonly metadata?: Record<string, unknown> | undefined;
  readonly offlineTimeoutS?: number | null | undefined;
}

/** Creates or updates a device's registry row with the fields given (others untouched). */
export async function saveDeviceSettings(db: VigilDb, deviceId: string, settings: DeviceSettings): Promise<void> {
  const set: Partial<typeof devices.$inferInsert> = { updatedAt: new Date() };
  if (settings.type !== undefined) set.type = settings.type;
  if (settings.name !== undefined) set.name = settings.name;
  if (settings.metadata !== undefined) set.metadata = settings.metadata;
  if (settings.offlineTimeoutS !== undefined) set.offlineTimeoutS = settings.offlineTimeoutS;
  await db
    .insert(devices)
    .values({ id: deviceId, ...set })
    .onConflictDoUpdate({ target: devices.id, set });
}

/**
 * The status changes needed to compute uptime over [from, to]: the last one before, and those
 * inside; null when more than `maxRows` are inside (MAX_QUERY_ROWS).
 */
export async function getStatusWindow(
  db: VigilDb,
  deviceId: string,
  from: number,
  to: number,
  maxRows: number,
): Promise<{ before: { status: 'online' | 'offline'; at: number } | null; changes: { status: 'online' | 'offline'; at: number }[] } | null> {
  const [before, inside] = await Promise.all([
    db
      .select({ status: statusChanges.status, at: statusChanges.at })
      .from(statusChanges)
      .where(and(eq(statusChanges.deviceId, deviceId), lt(statusChanges.at, new Date(from))))
      .orderBy(desc(statusChanges.at))
      .limit(1),
    db
      .select({ status: statusChanges.status, at: statusChanges.at })
      .from(statusChanges)
      .where(and(eq(statusChanges.deviceId, deviceId), gte(statusChanges.at, new Date(from)), lt(statusChanges.at, new Date(to))))
      .orderBy(asc(statusChanges.at), asc(statusChanges.id))
      .limit(maxRows + 1),
  ]);
  if (inside.length > maxRows) return null;
  return {
    before: before[0] ? { status: before[0].status, at: before[0].at.getTime() } : null,
    changes: inside.map((c) => ({ status: c.status, at: c.at.getTime() })),
  };
}

/** Removes a device from the registry table; its history stays until retention removes it. */
export async function deleteDevice(db: VigilDb, deviceId: string): Promise<void> {
  await db.delete(devices).where(eq(devices.id, deviceId));
}

/**
 * A stored newest reading as the hub's Telemetry, built field by field: the same shape as a live
 * reading's (a spread of the parsed JSON would give every restored device an object of its own
 * layout with its properties out of line), readings without anything inherited.
 */
function restoredTelemetry(deviceId: string, stored: StoredTelemetry): Telemetry {
  let metrics: Record<string, number> | null = null;
  if (stored.metrics) {
    metrics = newReadings();
    for (const key of Object.keys(stored.metrics)) metrics[key] = stored.metrics[key]!;
  }
  return {
    deviceId,
    ts: stored.ts,
    receivedAt: stored.receivedAt,
    batteryLevel: stored.batteryLevel ?? null,
    rssi: stored.rssi ?? null,
    responseTimeMs: stored.responseTimeMs ?? null,
    errorRate: stored.errorRate ?? null,
    metrics,
  };
}
