import type { Recovery } from './fanout.js';

interface Ring {
  readonly seqs: number[];
  readonly frames: string[];
  /** Next write position once full. */
  next: number;
  followers: number;
  /** Kept until then after its last follower left (a client reconnecting within it can resume). */
  keepUntil: number;
}

/**
 * The last `size` frames of each device that has a follower, or had one within `ttlMs`, so only
 * followed devices cost memory. Rings are dropped by `sweep`.
 */
export class MemoryHistory {
  private readonly rings = new Map<string, Ring>();

  constructor(
    private readonly size: number,
    private readonly ttlMs: number,
  ) {}

  get devices(): number {
    return this.rings.size;
  }

  /** True while the device's frames are recorded (it has, or recently had, a follower). */
  keeps(deviceId: string): boolean {
    return this.rings.has(deviceId);
  }

  follow(deviceId: string): void {
    if (this.size === 0) return;
    let ring = this.rings.get(deviceId);
    if (ring === undefined) this.rings.set(deviceId, (ring = { seqs: [], frames: [], next: 0, followers: 0, keepUntil: 0 }));
    ring.followers++;
  }

  unfollow(deviceId: string, now: number): void {
    const ring = this.rings.get(deviceId);
    if (ring === undefined) return;
    if (--ring.followers <= 0) {
      ring.followers = 0;
      ring.keepUntil = now + this.ttlMs;
    }
  }

  record(deviceId: string, seq: number, frame: string): void {
    const ring = this.rings.get(deviceId);
    if (ring === undefined) return;
    if (ring.seqs.length < this.size) {
      ring.seqs.push(seq);
      ring.frames.push(frame);
      return;
    }
    ring.seqs[ring.next] = seq;
    ring.frames[ring.next] = frame;
    ring.next = (ring.next + 1) % this.size;
  }

  /** Frames after `sinceSeq` up to `currentSeq`, or not recovered when any of them is gone. */
  recover(deviceId: string, sinceSeq: number, currentSeq: number): Recovery {
    if (sinceSeq === currentSeq) return { recovered: true, seq: currentSeq, frames: [] };
    const ring = this.rings.get(deviceId);
    if (ring === undefined || sinceSeq > currentSeq) return { recovered: false };
    const n = ring.seqs.length;
    const frames: string[] = [];
    let expected = sinceSeq + 1;
    for (let i = 0; i < n; i++) {
      const at = (ring.next + i) % n;
      const seq = ring.seqs[at]!;
      if (seq <= sinceSeq) continue;
      if (seq !== expected) return { recovered: false };
      frames.push(ring.frames[at]!);
      expected++;
    }
    return expected === currentSeq + 1 ? { recovered: true, seq: currentSeq, frames } : { recovered: false };
  }

  sweep(now: number): void {
    for (const [deviceId, ring] of this.rings) if (ring.followers === 0 && ring.keepUntil <= now) this.rings.delete(deviceId);
  }
}
