import type { Redis } from 'ioredis';
import type { DeviceStatus, StatusChange, TransitionReason } from '../domain/device-status.js';

/**
 * What the Redis presence store hears besides its replies: keyspace expiry events (switched on
 * here) and other hubs' announcements of the transitions they claimed.
 */

/** "hub|id|status|reason|at|lastSeen" from another hub, or null (own echo or malformed). */
export function parseAnnouncement(message: string, ownHubId: string): StatusChange | null {
  const [hub, deviceId, status, reason, at, lastSeen] = message.split('|');
  if (hub === ownHubId || !deviceId || (status !== 'online' && status !== 'offline')) return null;
  return {
    deviceId,
    status: status as DeviceStatus,
    previous: status === 'online' ? 'offline' : 'online',
    reason: reason as TransitionReason,
    at: Number(at),
    lastSeen: lastSeen ? Number(lastSeen) : null,
  };
}

/** Adds E (keyevent) and x (expired) to the existing flags, keeping whatever else is set. */
export function mergeFlags(current: string): string {
  let flags = current;
  if (!flags.includes('E')) flags += 'E';
  if (!flags.includes('x') && !flags.includes('A')) flags += 'x';
  return flags;
}

/** Switches on expired-key events, keeping the server's other notification flags. */
export async function enableExpiryEvents(commands: Redis): Promise<void> {
  let current: string;
  try {
    const reply = (await commands.config('GET', 'notify-keyspace-events')) as string[];
    current = reply[1] ?? '';
    const wanted = mergeFlags(current);
    if (wanted !== current) await commands.config('SET', 'notify-keyspace-events', wanted);
  } catch (error) {
    throw new Error(
      `Redis refused CONFIG for notify-keyspace-events (${(error as Error).message}); ` +
        "set notify-keyspace-events to include 'Ex' in redis.conf (e.g. notify-keyspace-events Ex)",
    );
  }
}
