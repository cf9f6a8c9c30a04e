import { fleetSeqOf, type FleetRecovery } from '../fanout/fanout.js';
import { holdChannel } from './held-frames.js';
import { ALL_CHANNEL } from './hub.js';
import { refuseOverLimit } from './device-subscriptions.js';
import { encodeAck, encodeFleetAck, type FleetResume, type RequestId } from './protocol.js';
import type { Session } from './session.js';
import { sharedTopic } from './topics.js';

/**
 * `subscribe_all`: the `*` feed, numbered by fleet_seq. The ack names the epoch and the last
 * fleet_seq the connection will not get live; resuming (`since_fleet_seq` + `epoch`), the frames
 * after it follow the ack (`recovered: true`) or the client reloads from REST (`recovered: false`).
 *
 * On one instance this is synchronous. In a cluster the head and missed frames come from Redis:
 * until they do, `*` frames are held (the device topics keep bringing the shared frames of devices
 * the connection follows, so those are dropped from the hold), then the ack, the missed frames and
 * the held ones past the head are sent, and the connection joins `*` in the same step.
 */
export function subscribeAll(session: Session, id: RequestId, resume: FleetResume | null, summaries: boolean): void {
  if (session.all || session.preparing?.has(ALL_CHANNEL)) {
    session.socket.send(encodeAck(id)); // the feed is followed already; summaries may be asked for now
    if (session.all) joinSummaries(session, summaries);
    return;
  }
  if (session.subscriptionCount >= session.limits.maxSubscriptions) return refuseOverLimit(session, id);
  const hub = session.hub;
  session.metrics.wsSubscriptions.inc();
  const since = resume !== null && resume.epoch === hub.epoch ? resume.sinceFleetSeq : null;
  // Frames of other instances reach `*` once this resolves.
  const followed = hub.follow(ALL_CHANNEL);
  const answer = (first: FleetRecovery) => {
    const recovered = resume === null ? null : since !== null && first.frames !== null;
    if (recovered !== null) session.metrics.resumes.inc({ channel: 'fleet', recovered: String(recovered) });
    session.socket.send(encodeFleetAck(id, hub.epoch, first.fleetSeq, recovered));
    if (recovered === true) for (const frame of first.frames!) session.socket.send(frame);
  };
  const prepared = hub.prepareFleet(since, followed);
  if (!(prepared instanceof Promise)) {
    followed.catch((error: unknown) => session.faults.report('ws', error, { conn: session.connectionId, type: 'subscribe_all' }));
    session.socket.cork(() => {
      joinAll(session);
      answer(prepared);
    });
    joinSummaries(session, summaries);
    return;
  }
  const held = holdChannel(session, ALL_CHANNEL);
  prepared
    .then(
      (first) => {
        if (session.closed) return;
        if (session.preparing?.get(ALL_CHANNEL) !== held) return session.socket.send(encodeAck(id)); // unsubscribed meanwhile: answered, nothing sent
        session.preparing.delete(ALL_CHANNEL);
        session.socket.cork(() => {
          answer(first);
          for (const frame of held) if (fleetSeqOf(frame) > first.fleetSeq && !followsDeviceOf(session, frame)) session.socket.send(frame);
          if (!session.lagging) session.lag.unfollow(ALL_CHANNEL, session);
          joinAll(session);
        });
        joinSummaries(session, summaries);
      },
      (error: unknown) => {
        if (session.closed || session.preparing?.get(ALL_CHANNEL) !== held) return;
        leaveFleet(session);
        session.failedLater(id, error, 'subscribe_all', 'could not reach the cluster for the fleet feed; subscribe again');
      },
    )
    .catch((error: unknown) => session.internalError(id, error, 'subscribe_all'));
}

/** `summaries: true`: a full fleet table after the ack, then its changes once an interval (fleet-summary.ts). */
function joinSummaries(session: Session, summaries: boolean): void {
  if (!summaries || session.summaries) return;
  session.summaries = true;
  session.hub.summaries.join(session.socket, session.lagging);
}

/** Joins `*`: synchronously, so no frame falls between; the devices' shared frames now come on `*` (topics.ts). */
function joinAll(session: Session): void {
  session.all = true;
  if (session.lagging) session.lag.follow(ALL_CHANNEL, session);
  else {
    session.socket.subscribe(ALL_CHANNEL);
    for (const deviceId of session.topicDevices()) session.socket.unsubscribe(sharedTopic(deviceId));
  }
}

/** A held `*` frame of a device this connection follows reached it on the device's own topic already. */
function followsDeviceOf(session: Session, frame: string): boolean {
  const at = frame.indexOf('"device_id":"');
  if (at === -1) return false;
  const end = frame.indexOf('"', at + 13);
  return session.devices.has(frame.slice(at + 13, end));
}

function leaveFleet(session: Session): void {
  session.preparing?.delete(ALL_CHANNEL);
  session.all = false;
  session.metrics.wsSubscriptions.dec();
  session.hub.unfollow(ALL_CHANNEL);
  session.lag.unfollow(ALL_CHANNEL, session);
  session.dropPending(ALL_CHANNEL);
}

export function unsubscribeAll(session: Session, id: RequestId): void {
  const preparing = session.preparing?.has(ALL_CHANNEL) === true;
  if (!session.all && !preparing) return session.sendError(id, 'not_subscribed', 'not subscribed to all');
  const wasLive = session.all && !session.lagging;
  leaveFleet(session);
  session.leaveSummaries(true);
  if (wasLive) {
    session.socket.unsubscribe(ALL_CHANNEL);
    for (const deviceId of session.topicDevices()) session.socket.subscribe(sharedTopic(deviceId));
  }
  session.socket.send(encodeAck(id));
}
