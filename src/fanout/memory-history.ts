import type { Recovery } from './fanout.js';
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
}

const NOT_COUNTED = (): void => undefined;

/**
 * The frames of the last `windowMs` (at most `maxBytes`) of each channel that has a follower, or
 * had one within `ttlMs`, so only followed channels cost memory. Used per device (seq) and for the
 * fleet feed (fleet_seq). Channels are dropped by `sweep`.
 */
export class MemoryHistory {
  private readonly kept = new Map<string, Kept>();
  private readonly dropped: (reason: DropReason, n: number) => void;

  constructor(private readonly opts: MemoryHistoryOptions) {
    this.dropped = opts.dropped ?? NOT_COUNTED;
  }

  get devices(): number {
    return this.kept.size;
  }

  /** Bytes held over every channel (a gauge; walks the channels, so for scrapes, not the hot path). */
  get bytes(): number {
    let total = 0;
    for (const k of this.kept.values()) total += k.window.bytes;
    return total;
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
    this.kept.get(channel)?.window.push(seq, frame, now, this.dropped);
  }

  /** Frames after `sinceSeq` up to `currentSeq`, or not recovered when any of them is gone. */
  recover(channel: string, sinceSeq: number, currentSeq: number, now: number): Recovery {
    if (sinceSeq === currentSeq) return { recovered: true, seq: currentSeq, frames: [] };
    const kept = this.kept.get(channel);
    if (kept === undefined || sinceSeq < kept.from) return { recovered: false };
    const frames = kept.window.after(sinceSeq, currentSeq, now);
    return frames === null ? { recovered: false } : { recovered: true, seq: currentSeq, frames };
  }

  /** Drops channels nobody followed within the TTL, and frames that left the window of the rest. */
  sweep(now: number): void {
    for (const [channel, kept] of this.kept) {
      if (kept.followers === 0 && kept.keepUntil <= now) this.kept.delete(channel);
      else kept.window.trim(now, this.dropped);
    }
  }
}
