import { seqOf } from '../fanout/fanout.js';
import { ALL_CHANNEL } from './frame-publisher.js';
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

/**
 * A connection following `*` begins fetching a device's first frames (a cluster): the device's
 * status, health and alert frames come on `*`, so `*` leaves its uWS topic too and its frames wait
 * with the device's, in arrival order, until every such device has its first frames
 * (`releaseQueued`). Only the device's frames past its first frames are then sent, and `*` in its
 * fleet_seq order; nothing of the device overtakes its snapshot. Call after `holdChannel`.
 */
export function queueWithFleet(session: Session, deviceId: string): void {
  if (session.fleetQueue === null) {
    session.fleetQueue = [];
    session.queuedDevices = new Map();
    if (!session.lagging) {
      session.socket.unsubscribe(ALL_CHANNEL);
      session.lag.follow(ALL_CHANNEL, session);
    }
  }
  session.queuedDevices!.set(deviceId, null);
}

/** Keeps a frame of `*` or of a queued device (see queueWithFleet); false when it is not one. */
export function queueFrame(session: Session, channel: string, key: string, frame: string): boolean {
  const queue = session.fleetQueue;
  if (queue === null || (channel !== ALL_CHANNEL && session.queuedDevices?.has(channel) !== true)) return false;
  if (queue.length < MAX_HELD_FRAMES * 3) queue.push(channel, key, frame);
  return true;
}

/**
 * A queued device's first frames were sent (`firstSeq`: the seq they end at; -1 when they could
 * not be fetched), or it was left (`firstSeq` undefined). Once none is still fetching, the queue is
 * sent — each device's frames past its first frames, `*` frames while `*` is followed — and the
 * devices and `*` rejoin their topics, in the same step. Call inside a cork.
 */
export function releaseQueued(session: Session, deviceId: string, firstSeq: number | undefined): void {
  const devices = session.queuedDevices;
  if (devices === null || !devices.has(deviceId)) return;
  if (firstSeq === undefined) devices.delete(deviceId);
  else devices.set(deviceId, firstSeq);
  for (const seq of devices.values()) if (seq === null) return;
  const queue = session.fleetQueue!;
  session.fleetQueue = null;
  session.queuedDevices = null;
  for (let i = 0; i < queue.length; i += 3) {
    const channel = queue[i]!;
    const frame = queue[i + 2]!;
    const device = channel === ALL_CHANNEL ? deviceOf(frame) : channel;
    const first = devices.get(device);
    if (first !== undefined && first !== null && seqOf(frame) <= first) continue; // in its first frames
    if (channel === ALL_CHANNEL ? !session.all && first === undefined : !session.devices.has(channel)) continue; // left meanwhile
    if (session.lagging) session.conflate(channel, queue[i + 1]!, frame);
    else session.socket.send(frame);
  }
  for (const id of devices.keys()) {
    if (!session.devices.has(id) || session.lagging) continue;
    session.lag.unfollow(id, session);
    session.joinTopics(id);
  }
  if (session.all && !session.lagging) {
    session.lag.unfollow(ALL_CHANNEL, session);
    session.socket.subscribe(ALL_CHANNEL);
  }
}

/** The device a `*` frame is of (`"*"` for a fleet incident). */
function deviceOf(frame: string): string {
  const at = frame.indexOf('"device_id":"');
  if (at === -1) return '';
  return frame.slice(at + 13, frame.indexOf('"', at + 13));
}
