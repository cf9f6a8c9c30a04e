import { sql } from 'drizzle-orm';
import { index, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/** Alerts and their lifecycle. The partial unique index allows one active alert per (device, type). */
export const alerts = pgTable(
  'alerts',
  {
    id: text('id').primaryKey(),
    deviceId: text('device_id').notNull(),
    type: text('type').notNull(),
    severity: text('severity', { enum: ['critical', 'major', 'minor', 'warning', 'info'] }).notNull(),
    state: text('state', { enum: ['raised', 'acknowledged', 'cleared'] }).notNull(),
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
    raisedAt: timestamp('raised_at', { withTimezone: true, mode: 'date' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
    clearedAt: timestamp('cleared_at', { withTimezone: true, mode: 'date' }),
    acknowledgedAt: timestamp('acknowledged_at', { withTimezone: true, mode: 'date' }),
    acknowledgedBy: text('acknowledged_by'),
  },
  (t) => [
    uniqueIndex('alerts_one_active_per_type').on(t.deviceId, t.type).where(sql`${t.state} in ('raised', 'acknowledged')`),
    index('alerts_device_raised').on(t.deviceId, t.raisedAt.desc()),
    index('alerts_state').on(t.state),
  ],
);
