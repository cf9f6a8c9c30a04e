import type { DeviceStatus } from './device-status.js';

export interface UptimeResult {
  readonly onlineMs: number;
  readonly windowMs: number;
  /** 0..1, or null when nothing is known of the device in or before the window. */
  readonly ratio: number | null;
  readonly transitions: number;
}

/**
 * Online time within [from, to] from a device's status changes: `before` is the last change
 * before the window (its status holds at `from`), `changes` are those inside it, oldest first.
 * Time before the device was first seen does not count against it.
 */
export function computeUptime(
  before: { status: DeviceStatus; at: number } | null,
  changes: readonly { status: DeviceStatus; at: number }[],
  from: number,
  to: number,
): UptimeResult {
  let status: DeviceStatus | null = before?.status ?? null;
  let since = from;
  let onlineMs = 0;
  let knownMs = 0;
  for (const change of changes) {
    const at = Math.min(Math.max(change.at, from), to);
    if (status !== null) {
      knownMs += at - since;
      if (status === 'online') onlineMs += at - since;
    }
    status = change.status;
    since = at;
  }
  if (status !== null) {
    knownMs += to - since;
    if (status === 'online') onlineMs += to - since;
  }
  return { onlineMs, windowMs: to - from, ratio: knownMs > 0 ? onlineMs / knownMs : null, transitions: changes.length };
}
