import { jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** API keys: only a hash of the key is stored; the key itself is shown once, at creation. */
export const apiKeys = pgTable('api_keys', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  keyHash: text('key_hash').notNull().unique(),
  scopes: jsonb('scopes').$type<string[]>().notNull(),
  /** When set, the key may only read these devices. */
  deviceIds: jsonb('device_ids').$type<string[]>(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  lastUsedAt: timestamp('last_used_at', { withTimezone: true, mode: 'date' }),
});
