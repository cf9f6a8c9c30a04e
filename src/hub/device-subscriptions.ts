import { seqOf } from '../fanout/fanout.js';
import { holdChannel, queueWithFleet, releaseQueued } from './held-frames.js';
import type { Prepared, ResumeFrom } from './hub.js';
import { CloseCode, encodeAck, encodeResumeAck, type RequestId } from './protocol.js';
import type { Session } from './session.js';

/** Refused subscriptions a client may ask for before it is closed (a loop, not a user). */
const MAX_REFUSED_SUBSCRIPTIONS = 10;

/** `subscription_limit` for a request that would take the connection past WS_MAX_SUBSCRIPTIONS; nothing is subscribed. */
export function refuseOverLimit(session: Session, id: RequestId): void {
  const max = session.limits.maxSubscriptions;
  session.sendError(id, 'subscription_limit', `at most ${max} subscriptions per connection`);
  if (++session.refusedSubscriptions > MAX_REFUSED_SUBSCRIPTIONS) session.close(CloseCode.subscriptionLimit, 'subscription limit');
}

/** A device subscription begun: its first frames (now, or once fetched) and, if fetched, the live frames held meanwhile. */
export interface Begun {
  readonly deviceId: string;
  /** Not followed by the connection before this request. */
  readonly isNew: boolean;
  readonly prepared: Prepared | Promise<Prepared>;
  /** Live frames held while `prepared` is on its way (null: synchronous, nothing held). */
  held: string[] | null;
}

/**
 * Follows a device (when new) and asks the hub for its first frames. Synchronous results are
 * attached by `attach` in the caller's cork; promised ones are held by `hold` until `release`.
 */
export function begin(session: Session, deviceId: string, resume: ResumeFrom | null): Begun {
  const isNew = !session.devices.has(deviceId);
  const followed = isNew ? session.hub.follow(deviceId) : Promise.resolve();
  let prepared: Prepared | Promise<Prepared>;
  try {
    prepared = session.hub.prepare(deviceId, resume, followed);
  } catch (error) {
    if (isNew) session.hub.unfollow(deviceId); // not subscribed after all: release the follow taken above
    throw error;
  }
  if (isNew) {
    session.devices.add(deviceId);
    session.metrics.wsSubscriptions.inc();
  }
  if (prepared instanceof Promise) hold(session, deviceId);
  return { deviceId, isNew, prepared, held: session.preparing?.get(deviceId) ?? null };
}

/** Until the first frames arrive, live frames of the device are held (in order) rather than sent. */
export function hold(session: Session, deviceId: string): string[] {
  session.leaveTopics(deviceId);
  const held = holdChannel(session, deviceId);
  // Following `*`: the device's shared frames come there; they wait too (held-frames.ts).
  if (session.all) queueWithFleet(session, deviceId);
  return held;
}

/** Joins the device's channel right after its synchronous first frames: call inside one cork with them. */
export function attach(session: Session, deviceId: string): void {
  if (session.lagging) {
    session.lag.follow(deviceId, session);
    // Fresh frames supersede any conflated frame of this device still pending.
    session.dropPending(deviceId);
  } else session.joinTopics(deviceId);
}

/**
 * Sends the first frames of a held device and those held meanwhile that come after them, then
 * joins its topics; inside the caller's cork. False when the subscription ended meanwhile.
 */
export function release(session: Session, begun: Begun, first: Prepared): boolean {
  const { deviceId, held } = begun;
  if (session.closed || held === null || session.preparing?.get(deviceId) !== held) return false;
  session.preparing.delete(deviceId);
  for (const frame of first.frames) session.socket.send(frame);
  for (const frame of held) if (seqOf(frame) > first.seq) session.socket.send(frame);
  if (session.queuedDevices?.has(deviceId)) releaseQueued(session, deviceId, first.seq);
  else rejoin(session, deviceId);
  return true;
}

/** A held device whose first frames could not be fetched: it stays followed, live from now on. */
export function releaseFailed(session: Session, begun: Begun): void {
  if (session.closed || session.preparing?.get(begun.deviceId) !== begun.held) return;
  session.preparing.delete(begun.deviceId);
  if (session.queuedDevices?.has(begun.deviceId)) releaseQueued(session, begun.deviceId, -1);
  else rejoin(session, begun.deviceId);
}

function rejoin(session: Session, deviceId: string): void {
  if (session.lagging) return; // the lag router keeps delivering to it
  session.lag.unfollow(deviceId, session);
  session.joinTopics(deviceId);
}

export function countResume(session: Session, resume: ResumeFrom | null, first: Prepared): void {
  if (resume !== null) session.metrics.resumes.inc({ channel: 'device', recovered: String(first.recovered === true) });
}

export function subscribeDevice(session: Session, deviceId: string, id: RequestId, resume: ResumeFrom | null): void {
  const isNew = !session.devices.has(deviceId);
  if (isNew && session.subscriptionCount >= session.limits.maxSubscriptions) return refuseOverLimit(session, id);
  if (!isNew && session.preparing?.has(deviceId)) return session.socket.send(encodeAck(id)); // its first frames are coming
  const begun = begin(session, deviceId, resume);
  const ack = (first: Prepared) => (first.recovered === null ? encodeAck(id) : encodeResumeAck(id, first.recovered));
  const prepared = begun.prepared;
  if (!(prepared instanceof Promise)) {
    // Join the channel and send the first frames in one synchronous block: no frame can fall between.
    countResume(session, resume, prepared);
    session.socket.cork(() => {
      attach(session, deviceId);
      session.socket.send(ack(prepared));
      for (const frame of prepared.frames) session.socket.send(frame);
    });
    return;
  }
  prepared
    .then(
      (first) => {
        countResume(session, resume, first);
        session.socket.cork(() => {
          if (session.closed) return;
          if (session.preparing?.get(deviceId) !== begun.held) return session.socket.send(ack(first)); // unsubscribed meanwhile: answered, nothing sent
          session.socket.send(ack(first));
          release(session, begun, first);
        });
      },
      (error: unknown) => {
        if (session.closed || session.preparing?.get(deviceId) !== begun.held) return;
        session.socket.cork(() => {
          session.failedLater(id, error, 'subscribe_device', `could not read ${deviceId} from the cluster; subscribe again`);
          releaseFailed(session, begun);
        });
      },
    )
    .catch((error: unknown) => session.internalError(id, error, 'subscribe_device'));
}

/** Stops following a device; false when the connection did not follow it. */
export function leaveDevice(session: Session, deviceId: string): boolean {
  if (!session.devices.delete(deviceId)) return false;
  session.metrics.wsSubscriptions.dec();
  session.hub.unfollow(deviceId);
  const queued = session.queuedDevices?.has(deviceId) === true;
  if (session.lagging || session.preparing?.delete(deviceId) || queued) {
    session.lag.unfollow(deviceId, session);
    session.dropPending(deviceId);
  }
  session.leaveTopics(deviceId);
  if (queued) session.socket.cork(() => releaseQueued(session, deviceId, undefined));
  return true;
}

export function unsubscribeDevice(session: Session, deviceId: string, id: RequestId): void {
  if (!leaveDevice(session, deviceId)) return session.sendError(id, 'not_subscribed', `not subscribed to ${deviceId}`);
  session.socket.send(encodeAck(id));
}
