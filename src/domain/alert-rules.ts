import { z } from 'zod';

export const SEVERITIES = ['critical', 'major', 'minor', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * A threshold rule with hysteresis: raised when `metric` goes past `raise` (above or below) for at
 * least `for_s`, cleared only once it is back past `clear` — a value between the two changes
 * nothing, so a reading hovering at the threshold does not storm.
 */
export const thresholdRuleSchema = z
  .object({
    type: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/),
    /** battery_level, rssi, response_time_ms, error_rate, response_time_mean10, or metrics.<name> */
    metric: z.string().regex(/^(battery_level|rssi|response_time_ms|error_rate|response_time_mean10|metrics\.[A-Za-z0-9._:-]{1,64})$/),
    op: z.enum(['>', '<']),
    raise: z.number().finite(),
    clear: z.number().finite().optional(),
    severity: z.enum(SEVERITIES).default('warning'),
    device_type: z.string().optional(),
    for_s: z.number().min(0).max(86_400).default(0),
    /** For response_time_mean10: fewest samples before the rule judges. */
    min_samples: z.number().int().min(1).max(10).default(1),
  })
  .refine((r) => r.clear === undefined || (r.op === '>' ? r.clear <= r.raise : r.clear >= r.raise), {
    message: "clear must be on the safe side of raise (<= raise for '>', >= raise for '<')",
  });

export type ThresholdRuleInput = z.input<typeof thresholdRuleSchema>;

export interface ThresholdRule {
  readonly type: string;
  readonly metric: string;
  readonly op: '>' | '<';
  readonly raise: number;
  readonly clear: number;
  readonly severity: Severity;
  readonly deviceType: string | null;
  readonly forMs: number;
  readonly minSamples: number;
}

export function toRule(input: z.output<typeof thresholdRuleSchema>): ThresholdRule {
  return {
    type: input.type,
    metric: input.metric,
    op: input.op,
    raise: input.raise,
    clear: input.clear ?? input.raise,
    severity: input.severity,
    deviceType: input.device_type ?? null,
    forMs: input.for_s * 1000,
    minSamples: input.min_samples,
  };
}

/** The earlier system's rules (seed 002), with hysteresis added. */
export const BUILT_IN_RULES: readonly ThresholdRule[] = [
  toRule(thresholdRuleSchema.parse({ type: 'performance_degradation', metric: 'response_time_mean10', op: '>', raise: 1000, clear: 800, severity: 'major', min_samples: 5 })),
  toRule(thresholdRuleSchema.parse({ type: 'error_rate_spike', metric: 'error_rate', op: '>', raise: 0.1, clear: 0.05, severity: 'major' })),
  toRule(thresholdRuleSchema.parse({ type: 'low_battery', metric: 'battery_level', op: '<', raise: 20, clear: 25, severity: 'minor' })),
];

export const isPast = (rule: ThresholdRule, value: number): boolean => (rule.op === '>' ? value > rule.raise : value < rule.raise);
export const isBack = (rule: ThresholdRule, value: number): boolean => (rule.op === '>' ? value <= rule.clear : value >= rule.clear);

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
