import { loadConfig } from '../config.js';
import { openDatabase } from '../storage/database.js';

/** `npm run db:migrate`: applies the SQL migrations in drizzle/ to DATABASE_URL (or PGlite in DATA_DIR). */
const config = loadConfig(process.env, process.argv.slice(2));
const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, holder: 'npm run db:migrate' });
await database.close();
process.stdout.write(`migrations applied to ${database.kind === 'postgres' ? 'PostgreSQL (DATABASE_URL)' : `PGlite in ${config.DATA_DIR}`}\n`);
