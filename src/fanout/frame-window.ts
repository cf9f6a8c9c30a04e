/** How much history a channel keeps: frames of the last `windowMs`, at most `maxBytes` of them. */
export interface WindowLimits {
  readonly windowMs: number;
  readonly maxBytes: number;
}

/** Why a kept frame was dropped (counted in vigil_history_dropped_frames_total). */
export type DropReason = 'window' | 'bytes';

/**
 * One channel's recent frames, numbered consecutively (device seq or fleet_seq), oldest first.
 * A frame is dropped once it is older than the window or the kept bytes pass the cap (oldest
 * first). Sizes are the frame's length in UTF-16 units: its bytes for ASCII text, which is nearly
 * every frame (ids and field names are ASCII; only telemetry metrics may not be). Parallel arrays
 * with a moving start, compacted now and then: no object per frame on the hot path.
 */
export class FrameWindow {
  private seqs: number[] = [];
  private frames: string[] = [];
  private ats: number[] = [];
  private start = 0;
  bytes = 0;

  constructor(private readonly limits: WindowLimits) {}

  get length(): number {
    return this.seqs.length - this.start;
  }

  /** Appends a frame at `now`; `dropped` hears how many older frames it pushed out, by reason. */
  push(seq: number, frame: string, now: number, dropped: (reason: DropReason, n: number) => void): void {
    this.seqs.push(seq);
    this.frames.push(frame);
    this.ats.push(now);
    this.bytes += frame.length;
    this.trim(now, dropped);
  }

  /** Drops frames older than the window, then the oldest while over the byte cap. */
  trim(now: number, dropped: (reason: DropReason, n: number) => void): void {
    const oldest = now - this.limits.windowMs;
    let byWindow = 0;
    let byBytes = 0;
    while (this.start < this.seqs.length) {
      const tooOld = this.ats[this.start]! < oldest;
      if (!tooOld && this.bytes <= this.limits.maxBytes) break;
      this.bytes -= this.frames[this.start]!.length;
      this.frames[this.start] = '';
      this.start++;
      if (tooOld) byWindow++;
      else byBytes++;
    }
    if (byWindow > 0) dropped('window', byWindow);
    if (byBytes > 0) dropped('bytes', byBytes);
    if (this.start > 64 && this.start * 2 > this.seqs.length) this.compact();
  }

  /**
   * The frames numbered `sinceSeq + 1` … `headSeq`, or null when any of them is gone (older than
   * the window at `now`, pushed out by the cap, or never kept). `sinceSeq === headSeq`: nothing missed.
   */
  after(sinceSeq: number, headSeq: number, now: number): string[] | null {
    if (sinceSeq === headSeq) return [];
    if (sinceSeq > headSeq) return null;
    const oldest = now - this.limits.windowMs;
    const out: string[] = [];
    let expected = sinceSeq + 1;
    for (let i = this.start; i < this.seqs.length; i++) {
      const seq = this.seqs[i]!;
      if (seq <= sinceSeq) continue;
      if (seq !== expected || this.ats[i]! < oldest) return null;
      out.push(this.frames[i]!);
      expected++;
    }
    return expected === headSeq + 1 ? out : null;
  }

  private compact(): void {
    this.seqs = this.seqs.slice(this.start);
    this.frames = this.frames.slice(this.start);
    this.ats = this.ats.slice(this.start);
    this.start = 0;
  }
}
