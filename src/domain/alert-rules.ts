export const SEVERITIES = ['critical', 'major', 'minor', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * Hysteresis of a threshold rule: raised when the value goes past `raise` (above or below), cleared
 * only once it is back past `clear` — a value between the two changes nothing, so a reading hovering
 * at the threshold does not storm. (The rules themselves: rule-set.ts.)
 */
export interface Threshold {
  readonly op: '>' | '<';
  readonly raise: number;
  readonly clear: number;
}

export const isPast = (rule: Threshold, value: number): boolean => (rule.op === '>' ? value > rule.raise : value < rule.raise);
export const isBack = (rule: Threshold, value: number): boolean => (rule.op === '>' ? value <= rule.clear : value >= rule.clear);

/**
 * EWMA mean and variance of one sensor metric, for the z-score detector: O(1) per sample.
 * alpha 0.05 ≈ the last ~40 samples; no verdict before `warmup` samples.
 */
export class EwmaStats {
  mean = 0;
  variance = 0;
  samples = 0;

  constructor(private readonly alpha = 0.05) {}

  /** The z-score of `value` against the history before it; then `value` joins the history. */
  score(value: number, warmup = 20): number | null {
    const z = this.samples >= warmup && this.variance > 0 ? (value - this.mean) / Math.sqrt(this.variance) : null;
    if (this.samples === 0) this.mean = value;
    else {
      const diff = value - this.mean;
      this.mean += this.alpha * diff;
      this.variance = (1 - this.alpha) * (this.variance + this.alpha * diff * diff);
    }
    this.samples++;
    return z;
  }
}
