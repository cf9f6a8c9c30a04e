import { bigserial, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * Notifications waiting to be delivered (docs/notifications.md): one row per event and sink,
 * written in the same transaction as the alert state (or status change) it announces, deleted once
 * the sink accepted it, `dead` after too many attempts or too long. `seq` orders the events of one
 * `subject` (an alert or a device) per sink: a later one is not sent while an earlier one is pending,
 * so a receiver never sees "cleared" before "raised".
 */
export const notificationOutbox = pgTable(
  'notification_outbox',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    /** The CloudEvents `id`: stable across retries, restarts and instances (receivers dedupe on it). */
    id: text('id').notNull(),
    sink: text('sink').notNull(),
    subject: text('subject').notNull(),
    type: text('type').notNull(),
    event: jsonb('event').$type<Record<string, unknown>>().notNull(),
    state: text('state', { enum: ['pending', 'dead'] }).notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** The claim of the instance delivering it (SELECT … FOR UPDATE SKIP LOCKED), until then. */
    leaseUntil: timestamp('lease_until', { withTimezone: true, mode: 'date' }),
    claimedBy: text('claimed_by'),
    lastError: text('last_error'),
  },
  (t) => [
    uniqueIndex('notification_outbox_sink_id').on(t.sink, t.id),
    index('notification_outbox_due').on(t.state, t.nextAttemptAt),
    index('notification_outbox_subject').on(t.sink, t.subject, t.seq),
  ],
);
