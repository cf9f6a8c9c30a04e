import { DrizzleQueryError } from 'drizzle-orm';

/**
 * Tells the two ways a write can fail apart. An outage (connection refused or terminated, timeout,
 * serialization failure, shutdown, anything unknown) is retried until it passes, holding every
 * acknowledgement. A refusal is the database rejecting the data itself: it fails the same way every
 * time, so retrying it would stall the queue for ever (issue #15).
 *
 * Both drivers report the SQLSTATE as `code` on the driver error (postgres.js `PostgresError`,
 * PGlite's `DatabaseError`), which Drizzle wraps as the `cause` of a `DrizzleQueryError` whose own
 * message holds the SQL and every parameter: that message is never logged or stored.
 */

export interface DbFailure {
  /** Five-character SQLSTATE, or the driver's own code (ECONNREFUSED, CONNECTION_CLOSED …), or null. */
  readonly sqlstate: string | null;
  /** The driver's message, without SQL or parameters, shortened. */
  readonly message: string;
}

/**
 * SQLSTATE classes that depend on the rows written, not on the database's state: 22 data exception
 * (22P05 untranslatable character, 22021 bad byte sequence, 22P02 invalid text representation,
 * 22003 numeric out of range …), 23 integrity constraint violation, 54 program limit exceeded
 * (a value or row too large). See https://www.postgresql.org/docs/current/errcodes-appendix.html.
 */
const REFUSAL_CLASSES: ReadonlySet<string> = new Set(['22', '23', '54']);
const SQLSTATE = /^[0-9A-Z]{5}$/;
const MAX_MESSAGE_CHARS = 300;

/** The driver error under Drizzle's wrapper, as SQLSTATE and message. */
export function describeDbFailure(error: unknown): DbFailure {
  const cause = driverError(error);
  const code = (cause as { code?: unknown }).code;
  // A wrapper left without its cause still must not leak its SQL and parameters.
  const message = cause instanceof DrizzleQueryError ? 'query failed' : cause instanceof Error ? cause.message : String(cause);
  return { sqlstate: typeof code === 'string' ? code : null, message: message.slice(0, MAX_MESSAGE_CHARS) };
}

/** The failure when the database refused the data (never retried), or null for an outage. */
export function refusalOf(error: unknown): DbFailure | null {
  const failure = describeDbFailure(error);
  if (failure.sqlstate === null || !SQLSTATE.test(failure.sqlstate)) return null;
  return REFUSAL_CLASSES.has(failure.sqlstate.slice(0, 2)) ? failure : null;
}

function driverError(error: unknown): unknown {
  let current = error;
  // DrizzleQueryError → driver error; bounded in case of a cycle.
  for (let depth = 0; depth < 3; depth++) {
    const cause = (current as { cause?: unknown } | null)?.cause;
    if (cause === undefined || cause === null || (current as { code?: unknown }).code !== undefined) break;
    current = cause;
  }
  return current;
}
