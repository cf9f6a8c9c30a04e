import type { Session } from './session.js';

/** Frames held for one channel while its snapshot or missed frames are fetched. */
const MAX_HELD_FRAMES = 10_000;

/**
 * Holds a channel's live frames (in order) while its first frames, a snapshot or missed frames,
 * come from another instance or Redis: the session takes them through the lag router meanwhile,
 * and the subscription handler sends those past the first frames once they are here, so nothing
 * is lost and nothing comes twice. Call with the channel off the session's uWS topics.
 */
export function holdChannel(session: Session, channel: string): string[] {
  const held: string[] = [];
  (session.preparing ??= new Map()).set(channel, held);
  session.lag.follow(channel, session);
  return held;
}

/** Keeps a live frame of a channel whose first frames are on their way; false when the channel is not held. */
export function holdFrame(session: Session, channel: string, frame: string): boolean {
  const held = session.preparing?.get(channel);
  if (held === undefined) return false;
  if (held.length < MAX_HELD_FRAMES) held.push(frame);
  return true;
}
