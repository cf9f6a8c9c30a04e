/** How learned offline timeouts are computed (LEARNED_TIMEOUT_* settings, docs/presence.md). */
export interface LearnedTimeoutSettings {
  /** Intervals kept per device (a ring). */
  readonly samples: number;
  /** Fewest intervals before a timeout is learned (until then the fixed one applies). */
  readonly minSamples: number;
  /** The percentile of the kept intervals, 50–100. */
  readonly percentile: number;
  /** The percentile is multiplied by this. */
  readonly factor: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/** Recomputed every this many intervals (and at the first chance): sorting the ring per message would cost more. */
const RECOMPUTE_EVERY = 4;

/**
 * One device's reporting intervals and the timeout learned from them: `factor` × the `percentile`
 * of the last `samples` intervals, clamped to [minMs, maxMs]. An interval longer than maxMs (an
 * outage) counts as maxMs, so one long outage cannot stretch a timeout past the clamp. Memory: a
 * Uint32Array of `samples` (4 bytes each); no allocation per message.
 */
export class IntervalLearner {
  private readonly ring: Uint32Array;
  private count = 0;
  private next = 0;
  private sinceRecompute = 0;
  private longest = 0;
  private second = 0;
  /** The learned timeout in ms, or null before `minSamples` intervals. */
  timeoutMs: number | null = null;
  /**
   * Before `minSamples` intervals: factor × the longest interval seen so far — from the third on,
   * the second longest, so one outage cannot stretch it — clamped; the fixed timeout is raised to
   * it if shorter, so a slow reporter is not declared offline at each of its first intervals while
   * its timeout is learned. 0 until the first interval.
   */
  warmupFloorMs = 0;

  constructor(private readonly settings: LearnedTimeoutSettings) {
    this.ring = new Uint32Array(settings.samples);
  }

  /** The device was heard from `intervalMs` after the time before. */
  observe(intervalMs: number, scratch: Float64Array): void {
    if (!(intervalMs > 0)) return;
    this.ring[this.next] = Math.min(intervalMs, this.settings.maxMs, 0xffff_ffff);
    this.next = (this.next + 1) % this.ring.length;
    if (this.count < this.ring.length) this.count++;
    if (this.count < this.settings.minSamples) {
      const value = this.ring[(this.next + this.ring.length - 1) % this.ring.length]!;
      if (value > this.longest) [this.second, this.longest] = [this.longest, value];
      else if (value > this.second) this.second = value;
      const basis = this.count >= 3 ? this.second : this.longest;
      this.warmupFloorMs = Math.min(this.settings.maxMs, Math.max(this.settings.minMs, basis * this.settings.factor));
      return;
    }
    if (this.timeoutMs !== null && ++this.sinceRecompute < RECOMPUTE_EVERY) return;
    this.sinceRecompute = 0;
    this.timeoutMs = learnedTimeout(this.ring, this.count, this.settings, scratch);
  }
}

/**
 * factor × percentile of the first `count` values of `intervals`, clamped. The values are sorted
 * in `scratch` (at least `count` long; shared by every device), so nothing is allocated.
 */
export function learnedTimeout(intervals: ArrayLike<number>, count: number, s: LearnedTimeoutSettings, scratch: Float64Array): number {
  // Insertion sort: at most n(n-1)/2 comparisons, 2,016 for the default 64 intervals (LEARNED_TIMEOUT_SAMPLES; fewer
  // on the nearly sorted rings devices make), and no allocation.
  for (let i = 0; i < count; i++) {
    const v = intervals[i]!;
    let j = i - 1;
    while (j >= 0 && scratch[j]! > v) {
      scratch[j + 1] = scratch[j]!;
      j--;
    }
    scratch[j + 1] = v;
  }
  // Nearest-rank percentile: the smallest value with at least p % of the values at or below it —
  // but below 100 % never the largest, which with fewer than 1 / (1 − p) values it would be: one
  // outage among the first twenty intervals must not set the timeout.
  const top = s.percentile < 100 && count > 1 ? count - 1 : count;
  const rank = Math.min(top, Math.max(1, Math.ceil((s.percentile / 100) * count)));
  const value = scratch[rank - 1]! * s.factor;
  return Math.round(Math.min(s.maxMs, Math.max(s.minMs, value)));
}

/** The LEARNED_TIMEOUT_* settings, or null unless LEARNED_TIMEOUTS=true. */
export function learnedTimeoutSettings(config: {
  readonly LEARNED_TIMEOUTS: boolean;
  readonly LEARNED_TIMEOUT_SAMPLES: number;
  readonly LEARNED_TIMEOUT_MIN_SAMPLES: number;
  readonly LEARNED_TIMEOUT_PERCENTILE: number;
  readonly LEARNED_TIMEOUT_FACTOR: number;
  readonly LEARNED_TIMEOUT_MIN_S: number;
  readonly LEARNED_TIMEOUT_MAX_S: number;
}): LearnedTimeoutSettings | null {
  if (!config.LEARNED_TIMEOUTS) return null;
  return {
    samples: config.LEARNED_TIMEOUT_SAMPLES,
    minSamples: Math.min(config.LEARNED_TIMEOUT_MIN_SAMPLES, config.LEARNED_TIMEOUT_SAMPLES),
    percentile: config.LEARNED_TIMEOUT_PERCENTILE,
    factor: config.LEARNED_TIMEOUT_FACTOR,
    minMs: config.LEARNED_TIMEOUT_MIN_S * 1000,
    maxMs: Math.max(config.LEARNED_TIMEOUT_MIN_S, config.LEARNED_TIMEOUT_MAX_S) * 1000,
  };
}
