import { writerSettings } from '../config.js';
import { createNotifications, type Notifications } from '../notify/notifications.js';
import { openDatabase, type Database } from '../storage/database.js';
import { createWriter, type Writer } from '../storage/writer.js';
import type { StartContext } from './context.js';

export interface Storage {
  readonly database: Database;
  readonly writer: Writer;
  /** Null when no ALERT_WEBHOOK_URL or ALERTMANAGER_URL is set. */
  readonly notifications: Notifications | null;
}

/**
 * The database (PostgreSQL, or PGlite in DATA_DIR when DATABASE_URL is unset) and the batched
 * writer, which stores each alert transition's notification events in the outbox with it
 * (docs/notifications.md). Stopped in reverse: the writer flushes, then the database closes.
 */
export async function startStorage({ config, life, log, metrics, faults }: StartContext): Promise<Storage> {
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, log, holder: 'a Vigil hub' });
  life.onStop(() => database.close());
  const notifications = createNotifications(config, log, metrics, faults);
  const writer = createWriter(database, { ...writerSettings(config), notifications: notifications?.planner ?? null, log, metrics });
  life.onStop(() => writer.close());
  return { database, writer, notifications };
}
