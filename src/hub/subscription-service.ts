import { seqOf, type Fanout, type FleetRecovery, type Recovery } from '../fanout/fanout.js';
import type { DeviceEngine } from './device-engine.js';
import type { DeviceRegistry } from './device-registry.js';
import { snapshotFrame } from './frames.js';
import type { Insights } from './insights.js';
import type { OwnerAnswer } from '../cluster/owner-api/index.js';

/** What a subscriber gets first: a snapshot, or (resuming) the frames it missed; `seq` is the last included. */
export interface Prepared {
  readonly recovered: boolean | null;
  readonly frames: readonly string[];
  readonly seq: number;
}

export interface ResumeFrom {
  readonly sinceSeq: number;
  readonly epoch: string;
}

export interface SubscriptionServiceDeps {
  readonly fanout: Fanout;
  readonly registry: DeviceRegistry;
  readonly insights: Pick<Insights, 'health' | 'activeAlerts'>;
  readonly devices: Pick<DeviceEngine, 'timeoutOf'>;
  /** The device owner's snapshot (cluster mode; `ok: false` when it could not be asked). */
  readonly ownerSnapshot: (deviceId: string) => Promise<OwnerAnswer<string>>;
  readonly now: () => number;
}

/**
 * What a WebSocket client gets when it follows a channel: the channel followed on the fan-out and
 * its first frames (a snapshot, or the frames missed since a resume point). Synchronous on one
 * instance, so a snapshot taken inside a subscribe handler and the stream after it can neither
 * overlap nor leave a gap.
 */
export class SubscriptionService {
  constructor(private readonly deps: SubscriptionServiceDeps) {}

  /** Changes when numbering restarts: a client's `seq` is only comparable within one epoch. */
  get epoch(): string {
    return this.deps.fanout.epoch;
  }

  /** A WebSocket client follows a channel (device id or `*`): frames from every instance come here. */
  follow(channel: string): Promise<void> {
    return this.deps.fanout.follow(channel);
  }

  unfollow(channel: string): void {
    this.deps.fanout.unfollow(channel);
  }

  /**
   * What a new subscriber gets first. Synchronous when this instance numbers the device and can
   * answer at once (so nothing falls between it and the stream); otherwise a promise, once frames
   * from every instance reach this one (`followed`), of the missed frames or the owner's snapshot.
   */
  prepare(deviceId: string, resume: ResumeFrom | null, followed: Promise<void>): Prepared | Promise<Prepared> {
    const { fanout, registry } = this.deps;
    const resumable = resume !== null && resume.epoch === this.epoch;
    if (fanout.kind === 'local') {
      const seq = registry.get(deviceId)?.seq ?? 0;
      const recovery = resumable ? fanout.recover(deviceId, resume.sinceSeq, seq) : null;
      if (recovery !== null && !(recovery instanceof Promise) && recovery.recovered) return { recovered: true, frames: recovery.frames, seq: recovery.seq };
      return { recovered: resume === null ? null : false, frames: [this.snapshot(deviceId)], seq };
    }
    return (async () => {
      await followed;
      if (resumable) {
        const recovery: Recovery = await fanout.recover(deviceId, resume.sinceSeq, registry.get(deviceId)?.seq ?? 0);
        if (recovery.recovered) return { recovered: true, frames: recovery.frames, seq: recovery.seq };
      }
      const fromOwner = await this.deps.ownerSnapshot(deviceId);
      const frame = fromOwner.ok ? fromOwner.value : this.snapshot(deviceId); // owner silent: this instance's view
      return { recovered: resume === null ? null : false, frames: [frame], seq: seqOf(frame) };
    })();
  }

  /**
   * What a new follower of `*` gets first: the last fleet_seq it will not be sent live and, when
   * resuming within this epoch, the frames after `since` (null: not recovered). Synchronous on a
   * single instance; in a cluster once frames from every instance reach this one (`followed`).
   */
  prepareFleet(since: number | null, followed: Promise<void>): FleetRecovery | Promise<FleetRecovery> {
    const fanout = this.deps.fanout;
    if (fanout.kind === 'local') return fanout.recoverFleet(since) as FleetRecovery;
    return followed.then(() => fanout.recoverFleet(since));
  }

  /** The device's full current state as this instance holds it (`snapshot` frame). */
  snapshot(deviceId: string): string {
    const { insights } = this.deps;
    return snapshotFrame(
      deviceId,
      this.deps.registry.get(deviceId),
      this.epoch,
      this.deps.now(),
      insights.health(deviceId),
      insights.activeAlerts(deviceId),
      this.deps.devices.timeoutOf(deviceId),
    );
  }
}
