import { bigserial, index, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/** Append-only history of online/offline transitions (uptime is computed from it). */
export const statusChanges = pgTable(
  'status_changes',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    deviceId: text('device_id').notNull(),
    status: text('status', { enum: ['online', 'offline'] }).notNull(),
    previous: text('previous', { enum: ['online', 'offline'] }),
    reason: text('reason', { enum: ['telemetry', 'heartbeat', 'timeout', 'last_will', 'reconcile'] }).notNull(),
    lastSeen: timestamp('last_seen', { withTimezone: true, mode: 'date' }),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  // Unique so a transition written twice (retry after an ambiguous failure) is stored once.
  (t) => [uniqueIndex('status_changes_device_at_status').on(t.deviceId, t.at, t.status), index('status_changes_device_at').on(t.deviceId, t.at.desc())],
);
