import { isStorableText } from '../domain/storable-text.js';
import type { DbFailure } from './db-errors.js';
import type { VigilDb } from './database.js';
import { deadLetters } from './schema/index.js';

export interface DeadLetter {
  readonly table: string;
  readonly row: { readonly deviceId?: unknown };
  readonly failure: DbFailure;
}

/**
 * Keeps one refused row. JSON.stringify writes NUL and lone surrogates as `\u0000`/`\ud800`
 * escapes (ES2019 well-formed stringify), so the payload is plain storable text whatever it holds.
 */
export async function insertDeadLetter(db: VigilDb, letter: DeadLetter): Promise<void> {
  const deviceId = letter.row.deviceId;
  await db.insert(deadLetters).values({
    tableName: letter.table,
    deviceId: typeof deviceId === 'string' && isStorableText(deviceId) ? deviceId.slice(0, 128) : null,
    payload: JSON.stringify(letter.row),
    sqlstate: letter.failure.sqlstate,
    // The database's own message (its refusals never hold NUL).
    error: letter.failure.message,
  });
}
