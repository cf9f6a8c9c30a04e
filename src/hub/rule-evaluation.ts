import type { Severity } from '../domain/alert-rules.js';
import { severityRank, type CompiledRule, type RuleList } from '../domain/rule-set.js';
import type { RollingMetricsTable } from '../domain/rolling-metrics.js';
import type { Telemetry } from '../domain/telemetry.js';
import type { AlertBook } from './alert-book.js';
import type { Alert } from '../domain/alert.js';
import type { DeviceState } from '../domain/device-state.js';

/** The value a rule judges in this message, or null when the message does not carry it. Allocates nothing. */
export function readRule(rule: CompiledRule, t: Telemetry, metrics: RollingMetricsTable, row: number): number | null {
  switch (rule.source) {
    case 'battery_level':
      return t.batteryLevel;
    case 'rssi':
      return t.rssi;
    case 'error_rate':
      return t.errorRate;
    case 'response_time_ms':
      return t.responseTimeMs;
    case 'response_time_mean10': {
      if (t.responseTimeMs === null) return null;
      return metrics.recentSamples(row) >= rule.minSamples ? metrics.recentResponseMean(row) : null;
    }
    case 'sensor':
      return t.metrics?.[rule.sensor] ?? null;
  }
}

/**
 * The severity an alert of this rule should have after being active `activeMs`, when that is more
 * severe than `current`; null otherwise (no step due, or it was escalated already).
 */
export function escalationDue(rule: CompiledRule, activeMs: number, current: Severity): Severity | null {
  const steps = rule.escalation;
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i]!;
    if (activeMs < step.afterMs) continue;
    return severityRank(step.severity) < severityRank(current) ? step.severity : null;
  }
  return null;
}

/** Alert types no rule set governs: they are never cleared because a rule was removed. */
export const isRuleGoverned = (type: string): boolean => type !== 'device_offline' && type !== 'mass_offline' && !type.startsWith('anomaly:');

/**
 * What the rule functions below keep per device (part of the device's insight). The maps are made
 * when first needed: most devices never have an alert, a value past a threshold or a staleness rule.
 */
export interface RuleState {
  /** The device's row in the rolling metrics (and the insight's other numbers). */
  readonly row: number;
  /** Active alerts by type (one per type). */
  active: Map<string, Alert> | null;
  /** Since when a threshold rule's value has been past its threshold (minimum duration). */
  pastSince: Map<string, number> | null;
  /** Per staleness rule type: when its metric last arrived. */
  lastHeard: Map<string, number> | null;
  /** The rule list this device was last judged by, and its type then (null: not judged yet). */
  judgedBy: RuleList | null;
  judgedType: string | null;
}

/**
 * Staleness: `stale:<metric>` once the metric has not come for `stale_after_s` while the device
 * keeps sending telemetry; cleared by the next message that carries it. Judged on telemetry, so an
 * offline device holds it like its other alerts; a metric never seen since the hub started
 * following the device raises nothing.
 */
export function judgeStaleness(book: AlertBook, metrics: RollingMetricsTable, state: DeviceState, d: RuleState, rule: CompiledRule, t: Telemetry, now: number): void {
  const value = readRule(rule, t, metrics, d.row);
  const active = d.active?.get(rule.type);
  if (value !== null) {
    (d.lastHeard ??= new Map()).set(rule.type, now);
    if (active) book.clear(state, d.active!, active, now, { value });
    return;
  }
  if (active) {
    if (rule.escalation.length > 0) escalate(book, state, d, rule, now, null);
    return;
  }
  const last = d.lastHeard?.get(rule.type);
  if (last !== undefined && now - last >= rule.staleAfterMs) {
    book.raise(state, (d.active ??= new Map()), rule.type, rule.severity, now, { metric: rule.metric, last_value_at: new Date(last).toISOString(), stale_after_s: rule.staleAfterMs / 1000 });
  }
}

/** Escalation: an active alert of this rule takes the severity of the last step it has been active long enough for. */
export function escalate(book: AlertBook, state: DeviceState, d: RuleState, rule: CompiledRule, now: number, value: number | null): void {
  const alert = d.active?.get(rule.type);
  if (alert === undefined) return;
  const severity = escalationDue(rule, now - alert.raisedAt, alert.severity);
  if (severity !== null) book.escalate(state, alert, severity, now, value);
}

/**
 * The first message of a device judged by another rule list than before (a new rule-set version,
 * its type changed, or the first since the hub started — alerts restored from the database
 * included): its alerts whose rule no longer applies to it are cleared (`cleared_because:
 * "rule_removed"`), and half-started minimum durations of those rules forgotten. Runs once per
 * change, not per message.
 */
export function dropRemoved(book: AlertBook, state: DeviceState, d: RuleState, list: RuleList, now: number): void {
  d.judgedBy = list;
  d.judgedType = state.type;
  const applies = (type: string) => {
    const rule = list.byType.get(type);
    return rule !== undefined && (rule.deviceType === null || rule.deviceType === state.type);
  };
  const { active, pastSince } = d;
  if (active) {
    for (const alert of [...active.values()]) {
      if (isRuleGoverned(alert.type) && !applies(alert.type)) book.clear(state, active, alert, now, { reason: 'rule_removed' });
    }
  }
  if (pastSince) for (const type of [...pastSince.keys()]) if (isRuleGoverned(type) && !applies(type)) pastSince.delete(type);
}
