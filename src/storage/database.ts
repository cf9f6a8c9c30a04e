import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import type { Logger } from '../logger.js';
import { redactUrl, redactUrlsIn } from '../redact-url.js';
import { lockDataDir } from './data-dir-lock.js';
import * as schema from './schema/index.js';

/** Both drivers extend PgDatabase, so one schema and one set of queries serve PostgreSQL and PGlite. */
export type VigilDb = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  readonly kind: 'pglite' | 'postgres';
  readonly db: VigilDb;
  /** Largest batch that keeps the event loop responsive (PGlite runs on the hub's own thread). */
  readonly maxBatchRows: number;
  /** Batches one writer may have in flight at once. */
  readonly maxInFlight: number;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres:// URL; without it, PGlite in `dataDir`. */
  readonly url?: string | undefined;
  readonly dataDir: string;
  readonly log?: Logger;
  /** Who opens it, named to another process refused the same PGlite DATA_DIR ("the hub", "npm run keys"). */
  readonly holder?: string;
}

/** Rows of a raw `db.execute`: postgres.js returns them as the result, PGlite under `.rows`. */
export function resultRows<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as T[];
}

/** The SQL migrations drizzle-kit generated, next to the sources whatever the working directory. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** Opens the database and applies pending migrations before returning it. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  return opts.url ? openPostgres(opts.url) : openPglite(opts.dataDir, opts.holder ?? 'a Vigil process');
}

/** A driver's error as this module rethrows it: drivers may quote the URL (password and all) they were given. */
function driverMessage(error: unknown): string {
  if (!(error instanceof Error)) return redactUrlsIn(String(error));
  // Drizzle wraps the driver's error ("Failed query: …"): the reason is its cause.
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return redactUrlsIn(`${error.message.split('\n')[0]}${cause}`);
}

async function openPostgres(url: string): Promise<Database> {
  let client: postgres.Sql;
  try {
    client = postgres(url, { max: 10, onnotice: () => undefined, connect_timeout: 10 });
  } catch (error) {
    throw new Error(`DATABASE_URL ${redactUrl(url)} is not usable: ${driverMessage(error)}`);
  }
  const db = drizzlePostgres(client, { schema });
  try {
    await migratePostgres(db, { migrationsFolder: MIGRATIONS_FOLDER });
  } catch (error) {
    await client.end({ timeout: 1 });
    throw new Error(`PostgreSQL at DATABASE_URL ${redactUrl(url)} could not be migrated: ${driverMessage(error)}`);
  }
  return {
    kind: 'postgres',
    db: db as unknown as VigilDb,
    maxBatchRows: 5000,
    maxInFlight: 3,
    async ping() {
      await client`select 1`;
    },
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

async function openPglite(dataDir: string, holder: string): Promise<Database> {
  const dir = join(dataDir, 'pglite');
  mkdirSync(dir, { recursive: true });
  // Before PGlite touches its files: a second process on them loses data (it does not lock them itself).
  const lock = lockDataDir(dataDir, holder);
  let client: PGlite;
  try {
    client = await PGlite.create(dir);
  } catch (error) {
    lock.release();
    throw new Error(`the embedded database in ${dir} could not be opened (${driverMessage(error)}); set DATA_DIR to another folder or restore it`);
  }
  const db = drizzlePglite(client, { schema });
  try {
    await migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER });
  } catch (error) {
    await client.close().catch(() => undefined); // the migration's error is the one to report
    lock.release();
    throw new Error(`the embedded database in ${dir} could not be migrated: ${driverMessage(error)}`);
  }
  return {
    kind: 'pglite',
    db: db as unknown as VigilDb,
    // A 500-row insert blocks PGlite's (and so the hub's) thread for ~17 ms: keep batches small.
    maxBatchRows: 100,
    maxInFlight: 1,
    async ping() {
      await db.execute(sql`select 1`);
    },
    async close() {
      try {
        await client.close();
      } finally {
        lock.release();
      }
    },
  };
}
