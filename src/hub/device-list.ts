import type { Principal } from '../security/api-keys.js';
import { authorize } from '../security/policy.js';
import type { Prepared } from './hub.js';
import { attach, begin, countResume, hold, leaveDevice, refuseOverLimit, release, releaseFailed, type Begun } from './device-subscriptions.js';
import { encodeListAck, type DeviceResume, type RequestId } from './protocol.js';
import type { Session } from './session.js';

/** Ids named in an error message, at most (the rest are counted). */
const NAMED_IDS = 20;

/**
 * Devices' first frames (snapshots or missed frames) one connection may have prepared by
 * `subscribe_devices` per second: WS_MAX_SUBSCRIPTIONS, so a client may (re)subscribe everything it
 * is allowed to follow once a second. Without it, listing the same 500 followed devices again within
 * the message rate made one connection cost 500 snapshots a message (~40,000 a second measured).
 */
const FIRST_FRAMES_WINDOW_MS = 1000;
const firstFrames = new WeakMap<Session, { start: number; used: number }>();

function withinFirstFramesBudget(session: Session, devices: number, now: number): boolean {
  let budget = firstFrames.get(session);
  if (budget === undefined || now - budget.start >= FIRST_FRAMES_WINDOW_MS) firstFrames.set(session, (budget = { start: now, used: 0 }));
  if (budget.used + devices > session.limits.maxSubscriptions) return false;
  budget.used += devices;
  return true;
}

const named = (ids: readonly string[]): string => (ids.length <= NAMED_IDS ? ids.join(', ') : `${ids.slice(0, NAMED_IDS).join(', ')} and ${ids.length - NAMED_IDS} more`);

/**
 * `subscribe_devices`: many devices in one request, all or nothing. Every id is authorized first
 * (one refused id refuses the whole request with `forbidden` naming the refused ids: a client that
 * lists devices its key may not read has a bug to see, not a partial subscription to discover),
 * then the limit (WS_MAX_SUBSCRIPTIONS counts the new ids). Then one `ack` (with `recovered` per
 * resumed id) and each device's snapshot or missed frames, in list order, then the live stream.
 */
export function subscribeDevices(session: Session, principal: Principal, deviceIds: readonly string[], resume: ReadonlyMap<string, DeviceResume>, id: RequestId): void {
  const refused = deviceIds.filter((deviceId) => !authorize(principal, 'device.read', deviceId).ok);
  if (refused.length > 0) return session.sendError(id, 'forbidden', `this key may not read ${named(refused)}; nothing was subscribed`);
  const added = deviceIds.filter((deviceId) => !session.devices.has(deviceId)).length;
  if (session.subscriptionCount + added > session.limits.maxSubscriptions) return refuseOverLimit(session, id);
  // A device whose first frames are still coming (an earlier request) gets them from that request.
  const wanted = deviceIds.filter((deviceId) => session.preparing?.has(deviceId) !== true);
  if (!withinFirstFramesBudget(session, wanted.length, Date.now())) {
    return session.sendError(id, 'rate_limited', `at most ${session.limits.maxSubscriptions} devices' first frames per second (WS_MAX_SUBSCRIPTIONS); nothing was subscribed, retry in a second`);
  }
  const begun: Begun[] = [];
  try {
    for (const deviceId of wanted) begun.push(begin(session, deviceId, resume.get(deviceId) ?? null));
  } catch (error) {
    for (const b of begun) if (b.isNew) leaveDevice(session, b.deviceId);
    throw error;
  }
  const ack = (done: readonly { readonly b: Begun; readonly first: Prepared }[]) => {
    const recovered: Record<string, boolean> = {};
    for (const { b, first } of done) {
      if (first.recovered !== null) recovered[b.deviceId] = first.recovered;
      countResume(session, resume.get(b.deviceId) ?? null, first);
    }
    return encodeListAck(id, resume.size > 0 ? { recovered } : {});
  };
  if (begun.every((b) => !(b.prepared instanceof Promise))) {
    const done = begun.map((b) => ({ b, first: b.prepared as Prepared }));
    session.socket.cork(() => {
      for (const b of begun) attach(session, b.deviceId);
      session.socket.send(ack(done));
      for (const { first } of done) for (const frame of first.frames) session.socket.send(frame);
    });
    return;
  }
  // Some are fetched (a cluster): hold every device's live frames until all first frames are here.
  for (const b of begun) if (b.held === null) b.held = hold(session, b.deviceId);
  void Promise.allSettled(begun.map((b) => b.prepared))
    .then((outcomes) => {
      if (session.closed) return;
      const failed = begun.filter((_, i) => outcomes[i]!.status === 'rejected');
      const done = begun.flatMap((b, i) => {
        const outcome = outcomes[i]!;
        return outcome.status === 'fulfilled' ? [{ b, first: outcome.value }] : [];
      });
      session.socket.cork(() => {
        session.socket.send(ack(done));
        for (const { b, first } of done) release(session, b, first);
        // Newly asked for: not subscribed, the client asks again (nothing half-done stays behind);
        // followed before: still followed, live from now on, as a failed subscribe_device leaves it.
        for (const b of failed) {
          if (b.isNew) leaveDevice(session, b.deviceId);
          else releaseFailed(session, b);
        }
        if (failed.length > 0) {
          const reason = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
          session.failedLater(id, reason.reason, 'subscribe_devices', `could not read ${named(failed.map((b) => b.deviceId))} from the cluster; those not followed before are not subscribed: subscribe to them again`);
        }
      });
    })
    .catch((error: unknown) => session.internalError(id, error, 'subscribe_devices'));
}

/** `unsubscribe_devices`: one `ack`, naming in `not_subscribed` the listed ids the connection did not follow. */
export function unsubscribeDevices(session: Session, deviceIds: readonly string[], id: RequestId): void {
  const notSubscribed = deviceIds.filter((deviceId) => !leaveDevice(session, deviceId));
  session.socket.send(encodeListAck(id, notSubscribed.length > 0 ? { not_subscribed: notSubscribed } : {}));
}
