import { z } from 'zod';
import { SEVERITIES, type Severity } from './alert-rules.js';
import { DEVICE_ID_PATTERN } from './device-id.js';

const NAME = /^[A-Za-z0-9._:-]{1,64}$/;
const METRIC = /^(battery_level|rssi|response_time_ms|error_rate|response_time_mean10|metrics\.[A-Za-z0-9._:-]{1,64})$/;
const METRIC_HINT = 'battery_level, rssi, response_time_ms, error_rate, response_time_mean10, or metrics.<name> (1-64 chars of [A-Za-z0-9._:-])';

/**
 * Bounds of one rule set: compiling and storing it stays cheap whatever a client sends. `bodyBytes`
 * is the `PUT /rules` body bound in place of HTTP_MAX_BODY_BYTES (64 KiB by default, which would
 * stop a rule set at a few hundred per-device overrides): 20 000 rules of ~80 bytes fit twice over.
 */
export const RULE_SET_LIMITS = { rulesPerList: 200, deviceTypes: 1000, devices: 10_000, totalRules: 20_000, escalationSteps: 8, bodyBytes: 4 * 1024 * 1024 } as const;

/** Severity rank: 0 is the most severe (critical), 4 the least (info). */
export const severityRank = (s: Severity): number => SEVERITIES.indexOf(s);

const escalationStep = z
  .object({
    after_s: z.number().positive().max(30 * 86_400),
    severity: z.enum(SEVERITIES),
  })
  .strict();

/**
 * One rule of a rule set. Three forms, told apart by their fields:
 * - threshold: `metric`, `op`, `raise` (and `clear`, `for_s`, `min_samples`) — as ALERT_RULES always took;
 * - staleness: `metric` and `stale_after_s`: `stale:<metric>` when the metric has not arrived for that
 *   long while the device still sends telemetry;
 * - off: `{"type": …, "enabled": false}` removes an inherited rule of that type (a default, or a
 *   device type's) for the scope it appears in.
 * Either of the first two may list `escalation` steps: the severity rises once the alert has been
 * active `after_s`.
 */
export const ruleSchema = z
  .object({
    type: z.string().regex(NAME, 'type: 1-64 chars of [A-Za-z0-9._:-]').optional(),
    enabled: z.boolean().default(true),
    metric: z.string().regex(METRIC, `metric must be ${METRIC_HINT}`).optional(),
    op: z.enum(['>', '<']).optional(),
    raise: z.number().finite().optional(),
    clear: z.number().finite().optional(),
    stale_after_s: z.number().positive().max(7 * 86_400).optional(),
    severity: z.enum(SEVERITIES).default('warning'),
    device_type: z.string().regex(NAME).optional(),
    for_s: z.number().min(0).max(86_400).optional(),
    min_samples: z.number().int().min(1).max(10).optional(),
    escalation: z.array(escalationStep).max(RULE_SET_LIMITS.escalationSteps).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const problem = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (!r.enabled) {
      if (r.type === undefined) problem(['type'], 'a rule turned off (enabled: false) names the type it turns off');
      return;
    }
    if (r.metric === undefined) return problem(['metric'], `metric is required (${METRIC_HINT})`);
    if (r.stale_after_s !== undefined) {
      for (const field of ['op', 'raise', 'clear', 'for_s', 'min_samples'] as const) {
        if (r[field] !== undefined) problem([field], `a staleness rule (stale_after_s) takes no ${field}`);
      }
    } else {
      if (r.type === undefined) problem(['type'], 'type is required for a threshold rule');
      if (r.op === undefined) problem(['op'], "op is required: '>' or '<' (or stale_after_s for a staleness rule)");
      if (r.raise === undefined) problem(['raise'], 'raise is required (the threshold)');
      if (r.op !== undefined && r.raise !== undefined && r.clear !== undefined && (r.op === '>' ? r.clear > r.raise : r.clear < r.raise)) {
        problem(['clear'], "clear must be on the safe side of raise (<= raise for '>', >= raise for '<')");
      }
    }
    let rank = severityRank(r.severity);
    let after = 0;
    (r.escalation ?? []).forEach((step, i) => {
      if (step.after_s <= after) problem(['escalation', i, 'after_s'], 'escalation steps come in increasing after_s');
      if (severityRank(step.severity) >= rank) problem(['escalation', i, 'severity'], 'each escalation step must be more severe than the severity before it');
      after = step.after_s;
      rank = Math.min(rank, severityRank(step.severity));
    });
  });

export type RuleInput = z.input<typeof ruleSchema>;
type RuleOutput = z.output<typeof ruleSchema>;

/** A list of rules in which each type appears once (the path of a repeat is named). */
const ruleList = z
  .array(ruleSchema)
  .max(RULE_SET_LIMITS.rulesPerList)
  .superRefine((rules, ctx) => {
    const seen = new Set<string>();
    rules.forEach((r, i) => {
      const type = ruleType(r);
      if (seen.has(type)) ctx.addIssue({ code: 'custom', path: [i, 'type'], message: `type ${type} appears twice in this list` });
      seen.add(type);
    });
  });

/**
 * A whole rule set, as `PUT /rules` takes it and the database stores it: rules for every device,
 * per device type, and per device (each list overrides the one before it, rule by rule, by type).
 */
const ruleSetObject = z
  .object({
    rules: ruleList.default([]),
    device_types: z.record(z.string().regex(NAME, 'device types are 1-64 chars of [A-Za-z0-9._:-]'), ruleList).default({}),
    devices: z.record(z.string().regex(DEVICE_ID_PATTERN, 'device ids are 1-128 chars of [A-Za-z0-9._:-]'), ruleList).default({}),
  })
  .strict()
  .superRefine((set, ctx) => {
    const types = Object.keys(set.device_types).length;
    const devices = Object.keys(set.devices).length;
    if (types > RULE_SET_LIMITS.deviceTypes) ctx.addIssue({ code: 'custom', path: ['device_types'], message: `at most ${RULE_SET_LIMITS.deviceTypes} device types` });
    if (devices > RULE_SET_LIMITS.devices) ctx.addIssue({ code: 'custom', path: ['devices'], message: `at most ${RULE_SET_LIMITS.devices} devices` });
    let total = set.rules.length;
    for (const list of Object.values(set.device_types)) total += list.length;
    for (const list of Object.values(set.devices)) total += list.length;
    if (total > RULE_SET_LIMITS.totalRules) ctx.addIssue({ code: 'custom', path: [], message: `at most ${RULE_SET_LIMITS.totalRules} rules in all` });
  });

/**
 * `__proto__` is a valid device id and type name, but an object key zod would silently drop (and
 * JavaScript objects cannot hold as data): refused with its path rather than lost.
 */
function reservedKeys(value: unknown, ctx: z.RefinementCtx): unknown {
  if (typeof value !== 'object' || value === null) return value;
  for (const scope of ['devices', 'device_types'] as const) {
    const map = (value as Record<string, unknown>)[scope];
    if (typeof map === 'object' && map !== null && Object.prototype.hasOwnProperty.call(map, '__proto__')) {
      ctx.addIssue({ code: 'custom', path: [scope, '__proto__'], message: '__proto__ cannot be a key here' });
    }
  }
  return value;
}

export const ruleSetSchema = z.preprocess(reservedKeys, ruleSetObject);

export type RuleSetInput = z.input<typeof ruleSetObject>;
export type RuleSetDocument = z.output<typeof ruleSetObject>;

export const EMPTY_RULE_SET: RuleSetDocument = { rules: [], device_types: {}, devices: {} };

/** A staleness rule's type defaults to `stale:<metric>`. */
export function ruleType(r: RuleOutput): string {
  return r.type ?? (r.stale_after_s !== undefined && r.metric !== undefined ? `stale:${r.metric}` : '');
}

/** Where a rule reads its value: one of the standard readings, the rolling mean, or a sensor metric. */
export type MetricSource = 'battery_level' | 'rssi' | 'response_time_ms' | 'error_rate' | 'response_time_mean10' | 'sensor';

export interface EscalationStep {
  readonly afterMs: number;
  readonly severity: Severity;
}

/** A rule ready for the hot path: everything a message needs is precomputed (no string work per message). */
export interface CompiledRule {
  readonly kind: 'threshold' | 'stale';
  readonly type: string;
  readonly metric: string;
  readonly source: MetricSource;
  /** For `metrics.<name>`: the name, sliced once here rather than per message. */
  readonly sensor: string;
  readonly op: '>' | '<';
  readonly raise: number;
  readonly clear: number;
  readonly severity: Severity;
  readonly deviceType: string | null;
  readonly forMs: number;
  readonly minSamples: number;
  readonly staleAfterMs: number;
  /** Most severe last; empty for none. */
  readonly escalation: readonly EscalationStep[];
}

/** A rule or the removal of an inherited one, by type. */
type Entry = { readonly type: string; readonly rule: CompiledRule | null };

export function compileRule(r: RuleOutput): Entry {
  const type = ruleType(r);
  if (!r.enabled) return { type, rule: null };
  const metric = r.metric!;
  const isSensor = metric.startsWith('metrics.');
  const stale = r.stale_after_s !== undefined;
  const raise = r.raise ?? 0;
  return {
    type,
    rule: {
      kind: stale ? 'stale' : 'threshold',
      type,
      metric,
      source: isSensor ? 'sensor' : (metric as MetricSource),
      sensor: isSensor ? metric.slice('metrics.'.length) : '',
      op: r.op ?? '>',
      raise,
      clear: r.clear ?? raise,
      severity: r.severity,
      deviceType: r.device_type ?? null,
      forMs: (r.for_s ?? 0) * 1000,
      minSamples: r.min_samples ?? 1,
      staleAfterMs: (r.stale_after_s ?? 0) * 1000,
      escalation: (r.escalation ?? []).map((s) => ({ afterMs: s.after_s * 1000, severity: s.severity })),
    },
  };
}

/** The rules that apply to one device, split by kind so the hot loop tests nothing it need not. */
export interface RuleList {
  readonly thresholds: readonly CompiledRule[];
  readonly stale: readonly CompiledRule[];
  /** Every rule in force by type (an active alert of a rule no longer here, or no longer for the device's type, is cleared). */
  readonly byType: ReadonlyMap<string, CompiledRule>;
}

/** The earlier system's rules (seed 002), with hysteresis: a rule set's `rules` override them by type. */
export const BUILT_IN_RULE_INPUTS: readonly RuleInput[] = [
  { type: 'performance_degradation', metric: 'response_time_mean10', op: '>', raise: 1000, clear: 800, severity: 'major', min_samples: 5 },
  { type: 'error_rate_spike', metric: 'error_rate', op: '>', raise: 0.1, clear: 0.05, severity: 'major' },
  { type: 'low_battery', metric: 'battery_level', op: '<', raise: 20, clear: 25, severity: 'minor' },
];
