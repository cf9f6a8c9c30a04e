import { bigserial, index, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Rows the database refused (a data error, not an outage), kept instead of retried for ever so one
 * bad row cannot stall its queue (docs/storage.md). `payload` is the row as JSON text with NUL and
 * lone surrogates escaped (`\u0000`, `\ud800`), so it is always storable, whatever it holds.
 */
export const deadLetters = pgTable(
  'dead_letters',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** The table the row was meant for: telemetry, status_changes, health_scores, alerts, commands, devices. */
    tableName: text('table_name').notNull(),
    deviceId: text('device_id'),
    payload: text('payload').notNull(),
    sqlstate: text('sqlstate'),
    error: text('error').notNull(),
    failedAt: timestamp('failed_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('dead_letters_failed_at').on(t.failedAt), index('dead_letters_table_failed_at').on(t.tableName, t.failedAt)],
);
