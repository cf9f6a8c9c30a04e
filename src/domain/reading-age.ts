/**
 * Readings older than the telemetry retention window (RETENTION_DAYS) are refused: retention would
 * delete them at its next run, and a clock at 1970 or a long-buffered device would otherwise store
 * rows nobody can read back and move no state forward (docs/storage.md). Counted as
 * `timestamp_too_old` in `vigil_invalid_messages_total`.
 */
export const TOO_OLD = 'timestamp_too_old';

export function olderThanRetention(ts: number, receivedAt: number, retentionMs: number): boolean {
  return ts < receivedAt - retentionMs;
}
