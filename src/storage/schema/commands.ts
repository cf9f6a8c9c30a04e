import { index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/** Commands sent to devices and their states (queued → sent → received → succeeded | failed | timed_out | expired). */
export const commands = pgTable(
  'commands',
  {
    id: text('id').primaryKey(),
    deviceId: text('device_id').notNull(),
    command: text('command').notNull(),
    params: jsonb('params').$type<Record<string, unknown>>().notNull().default({}),
    state: text('state', { enum: ['queued', 'sent', 'received', 'succeeded', 'failed', 'timed_out', 'expired'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    timeoutS: integer('timeout_s').notNull(),
    idempotencyKey: text('idempotency_key'),
    result: jsonb('result'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    uniqueIndex('commands_idempotency').on(t.deviceId, t.idempotencyKey),
    index('commands_device_created').on(t.deviceId, t.createdAt.desc()),
  ],
);
