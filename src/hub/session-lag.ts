import { holdFrame, queueFrame } from './held-frames.js';
import { ALL_CHANNEL } from './hub.js';
import { CloseCode } from './protocol.js';
import type { Session } from './session.js';
import { alsoOnAll } from './topics.js';

/**
 * A client that falls behind: it is taken off the uWS topics so the fast path never waits for it,
 * the newest frame per (channel, kind) waits in `session.pending`, and on drain those are sent and
 * it rejoins the topics within the same tick, so nothing falls between. Past the slow-client
 * deadline (WS_SLOW_DEADLINE) it is closed.
 */

/** A frame of a channel the session follows through the lag router (lagging, or its first frames on their way). */
export function conflate(session: Session, channel: string, key: string, frame: string): void {
  // Following `*` too: this frame comes on `*` (see topics.ts).
  if (session.all && channel !== ALL_CHANNEL && alsoOnAll(key)) return;
  if (queueFrame(session, channel, key, frame)) return;
  if (holdFrame(session, channel, frame)) return;
  const pendingKey = `${channel}\u0000${key}`;
  // delete + set moves the key to the end, so pending frames stay in the order of their newest version.
  const pending = (session.pending ??= new Map());
  if (pending.delete(pendingKey)) session.metrics.wsConflated.inc();
  pending.set(pendingKey, frame);
}

/** The client's buffer grew past the lag threshold: leave the topics, start conflating. */
export function enterLag(session: Session, now: number): void {
  if (session.lagging || session.closed) return;
  session.lagging = true;
  session.lagSince = now;
  for (const deviceId of session.topicDevices()) {
    session.leaveTopics(deviceId);
    session.lag.follow(deviceId, session);
  }
  if (session.all) {
    session.socket.unsubscribe(ALL_CHANNEL);
    session.lag.follow(ALL_CHANNEL, session);
  }
  if (session.summaries) session.hub.summaries.pause(session.socket); // state: a full snapshot again on catching up
  session.metrics.wsLagEpisodes.inc();
  session.metrics.wsLaggingClients.inc();
}

/**
 * The socket drained (or the lag monitor looked): send what is pending and, once the buffer is
 * low, rejoin the topics. Returns false when the client was closed as stuck.
 */
export function catchUp(session: Session, now: number): boolean {
  if (!session.lagging || session.closed) return true;
  const { socket, limits } = session;
  if (socket.bufferedAmount() > limits.lagBytes / 2) {
    if (now - session.lagSince > limits.slowDeadlineMs) {
      session.close(CloseCode.slowConsumer, 'slow consumer');
      return false;
    }
    return true;
  }
  socket.cork(() => {
    const pending = session.pending;
    if (pending !== null) {
      for (const frame of pending.values()) socket.send(frame);
      pending.clear();
    }
    if (socket.bufferedAmount() > limits.lagBytes / 2) return;
    leaveLag(session);
  });
  return true;
}

function leaveLag(session: Session): void {
  session.lagging = false;
  for (const deviceId of session.topicDevices()) {
    session.lag.unfollow(deviceId, session);
    session.joinTopics(deviceId);
  }
  // (While `*` waits for devices' first frames, it rejoins when they are here: held-frames.ts.)
  if (session.all && session.fleetQueue === null) {
    session.lag.unfollow(ALL_CHANNEL, session);
    session.socket.subscribe(ALL_CHANNEL);
  }
  if (session.summaries) session.hub.summaries.resend(session.socket);
  session.metrics.wsLaggingClients.dec();
}

/** Drops the pending frames of a channel (left, or superseded by fresh first frames). */
export function dropPending(session: Session, channel: string): void {
  const pending = session.pending;
  if (pending === null) return;
  const prefix = `${channel}\u0000`;
  for (const key of pending.keys()) if (key.startsWith(prefix)) pending.delete(key);
}
