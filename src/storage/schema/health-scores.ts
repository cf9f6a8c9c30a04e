import { jsonb, pgTable, primaryKey, real, text, timestamp } from 'drizzle-orm/pg-core';

/** Append-only health score history: one row each time a device's score moves by the configured step. */
export const healthScores = pgTable(
  'health_scores',
  {
    deviceId: text('device_id').notNull(),
    ts: timestamp('ts', { withTimezone: true, mode: 'date' }).notNull(),
    score: real('score').notNull(),
    components: jsonb('components').$type<Record<string, { value: number | null; score: number; weight: number }>>().notNull(),
  },
  (t) => [primaryKey({ columns: [t.deviceId, t.ts] })],
);
