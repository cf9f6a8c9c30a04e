import { integer, jsonb, pgTable, text, timestamp, index } from 'drizzle-orm/pg-core';

/**
 * The device registry: one row per device, updated in place (the only mutable table besides
 * alerts/commands). Every status change and every refresh of last seen / newest reading rewrites a
 * row, so no index covers a column they change: the updates stay HOT (no index entries written), with
 * room on each page for the new version (fillfactor 70, migration 0004). An index on `status` made a
 * fleet-wide wave of status changes cost ~29 µs a row against ~12 µs without it (#21); nothing
 * queries the table by status (the hub answers that from its registry).
 */
export const devices = pgTable(
  'devices',
  {
    id: text('id').primaryKey(),
    type: text('type'),
    name: text('name'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    firstSeen: timestamp('first_seen', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    lastSeen: timestamp('last_seen', { withTimezone: true, mode: 'date' }),
    status: text('status', { enum: ['online', 'offline', 'unknown'] }).notNull().default('unknown'),
    offlineTimeoutS: integer('offline_timeout_s'),
    /** The newest telemetry, so the first snapshot after a restart is right without a scan. */
    lastTelemetry: jsonb('last_telemetry').$type<StoredTelemetry>(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('devices_type_idx').on(t.type)],
);

/** Telemetry as kept in devices.last_telemetry (the hub's Telemetry, epoch ms). */
export interface StoredTelemetry {
  ts: number;
  receivedAt: number;
  batteryLevel: number | null;
  rssi: number | null;
  responseTimeMs: number | null;
  errorRate: number | null;
  metrics: Record<string, number> | null;
}
