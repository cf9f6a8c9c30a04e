import type { Recovery } from './fanout.js';
import { SlicedPass } from '../jobs/in-slices.js';
import { FrameWindow, type DropReason, type WindowLimits } from './frame-window.js';

interface Kept {
  readonly window: FrameWindow;
  followers: number;
  /** Kept until then after its last follower left (a client reconnecting within it can resume). */
  keepUntil: number;
  /** The seq before the first frame this history recorded: nothing at or before it is kept. */
  readonly from: number;
}

export interface MemoryHistoryOptions extends WindowLimits {
  /** How long a channel's frames are kept after its last follower left. */
  readonly ttlMs: number;
  /** Counts frames pushed out of a window (metrics). */
  readonly dropped?: (reason: DropReason, n: number) => void;
  /** Where a failure in a later slice of a sweep is reported (the first slice throws to the caller). */
  readonly fault?: (error: unknown) => void;
}

const NOT_COUNTED = (): void => undefined;
const CHANNELS_PER_TURN = 1000;

/**
 * The frames of the last `windowMs` (at most `maxBytes`) of each channel that has a follower, or
 * had one within `ttlMs`, so only followed channels cost memory. Used per device (seq) and for the
 * fleet feed (fleet_seq). Channels are dropped by `sweep`.
 */
export class MemoryHistory {
  private readonly kept = new Map<string, Kept>();
  private readonly dropped: (reason: DropReason, n: number) => void;
  /** Bytes held over every channel, kept up to date as windows change (no walk over the channels). */
  private total = 0;
  private sweepAt = 0;
  /** The sweep goes over the channels CHANNELS_PER_TURN at a time: in one turn, 10,000 followed devices held the loop ~30 ms (#21). */
  private readonly sweeping = new SlicedPass(
    () => this.kept,
    CHANNELS_PER_TURN,
    ([channel, kept]) => this.sweepOne(channel, kept),
    (error) => this.opts.fault?.(error),
  );

  constructor(private readonly opts: MemoryHistoryOptions) {
    this.dropped = opts.dropped ?? NOT_COUNTED;
  }

  get devices(): number {
    return this.kept.size;
  }

  /** Bytes held over every channel. */
  get bytes(): number {
    return this.total;
  }

  /** True while the channel's frames are recorded (it has, or recently had, a follower). */
  keeps(channel: string): boolean {
    return this.kept.has(channel);
  }

  /** `currentSeq`: the channel's last number so far (frames before the history began are not kept). */
  follow(channel: string, currentSeq: number): void {
    if (this.opts.windowMs === 0) return;
    let kept = this.kept.get(channel);
    if (kept === undefined) this.kept.set(channel, (kept = { window: new FrameWindow(this.opts), followers: 0, keepUntil: 0, from: currentSeq }));
    kept.followers++;
  }

  unfollow(channel: string, now: number): void {
    const kept = this.kept.get(channel);
    if (kept === undefined) return;
    if (--kept.followers <= 0) {
      kept.followers = 0;
      kept.keepUntil = now + this.opts.ttlMs;
    }
  }

  record(channel: string, seq: number, frame: string, now: number): void {
    const window = this.kept.get(channel)?.window;
    if (window === undefined) return;
    const before = window.bytes;
    window.push(seq, frame, now, this.dropped);
    this.total += window.bytes - before;
  }

  /** Frames after `sinceSeq` up to `currentSeq`, or not recovered when any of them is gone. */
  recover(channel: string, sinceSeq: number, currentSeq: number, now: number): Recovery {
    if (sinceSeq === currentSeq) return { recovered: true, seq: currentSeq, frames: [] };
    const kept = this.kept.get(channel);
    if (kept === undefined || sinceSeq < kept.from) return { recovered: false };
    const frames = kept.window.after(sinceSeq, currentSeq, now);
    return frames === null ? { recovered: false } : { recovered: true, seq: currentSeq, frames };
  }

  /**
   * Drops channels nobody followed within the TTL, and frames that left the window of the rest,
   * CHANNELS_PER_TURN channels an event-loop turn; each channel is judged at `now`, the sweep's start.
   * A sweep asked for while one is still going runs after it.
   */
  sweep(now: number): void {
    this.sweepAt = now;
    this.sweeping.run();
  }

  private sweepOne(channel: string, kept: Kept): void {
    const window = kept.window;
    if (kept.followers === 0 && kept.keepUntil <= this.sweepAt) {
      this.kept.delete(channel);
      this.total -= window.bytes;
      return;
    }
    const before = window.bytes;
    window.trim(this.sweepAt, this.dropped);
    this.total += window.bytes - before;
  }
}
