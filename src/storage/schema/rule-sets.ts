import { integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Every version of the alert rule set (docs/health-and-alerts.md), newest in force. The primary
 * key is the version, so two writers that both read version n cannot both store n + 1: the loser
 * gets a unique violation, answered 412 (optimistic concurrency without locks).
 */
export const ruleSets = pgTable('rule_sets', {
  version: integer('version').primaryKey(),
  /** The validated rule set document (`{"rules":…,"device_types":…,"devices":…}`). */
  document: jsonb('document').notNull(),
  /** `api` (PUT), `reset` (DELETE), or `env` (ALERT_RULES as the initial set). */
  source: text('source').notNull(),
  /** The API key id that stored it (null: no key, or ALERT_RULES). */
  createdBy: text('created_by'),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
