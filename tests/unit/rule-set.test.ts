import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CompiledRuleSet } from '../../src/domain/compiled-rules.js';
import { ruleSetSchema, type RuleSetInput } from '../../src/domain/rule-set.js';
import type { Telemetry } from '../../src/domain/telemetry.js';
import { Insights } from '../../src/hub/insights.js';
import { expectedVersion } from '../../src/transport/http/rule-routes.js';
import type { Alert, AlertTransition } from '../../src/domain/alert.js';
import { blankState, type DeviceState } from '../../src/domain/device-state.js';

const compile = (input: RuleSetInput, version = 1) => new CompiledRuleSet(version, ruleSetSchema.parse(input));
const problems = (input: unknown) => {
  const parsed = ruleSetSchema.safeParse(input);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('rule-set validation', () => {
  it('names the field of every problem', () => {
    expect(problems({ rules: [{ type: 'hot', metric: 'metrics.t' }] })).toEqual([
      "rules.0.op: op is required: '>' or '<' (or stale_after_s for a staleness rule)",
      'rules.0.raise: raise is required (the threshold)',
    ]);
    expect(problems({ rules: [{ metric: 'metrics.t', stale_after_s: 60, op: '>' }] })).toEqual(['rules.0.op: a staleness rule (stale_after_s) takes no op']);
    expect(problems({ devices: { d1: [{ type: 'x', metric: 'nonsense', op: '>', raise: 1 }] } })[0]).toMatch(/^devices\.d1\.0\.metric: metric must be/);
    expect(problems({ device_types: { sensor: [{ type: 'lb', metric: 'battery_level', op: '<', raise: 20, clear: 10 }] } })).toEqual([
      "device_types.sensor.0.clear: clear must be on the safe side of raise (<= raise for '>', >= raise for '<')",
    ]);
    expect(problems({ rules: [{ type: 'a', metric: 'rssi', op: '<', raise: -90, escalation: [{ after_s: 60, severity: 'info' }] }] })).toEqual([
      'rules.0.escalation.0.severity: each escalation step must be more severe than the severity before it',
    ]);
    expect(
      problems({ rules: [{ type: 'a', metric: 'rssi', op: '<', raise: -90, escalation: [{ after_s: 60, severity: 'major' }, { after_s: 30, severity: 'critical' }] }] }),
    ).toEqual(['rules.0.escalation.1.after_s: escalation steps come in increasing after_s']);
    expect(problems({ rules: [{ type: 'a', metric: 'rssi', op: '<', raise: 1 }, { type: 'a', metric: 'rssi', op: '<', raise: 2 }] })).toEqual(['rules.1.type: type a appears twice in this list']);
    expect(problems({ rules: [{ enabled: false }] })).toEqual(['rules.0.type: a rule turned off (enabled: false) names the type it turns off']);
    expect(problems({ rulez: [] })[0]).toMatch(/rulez/);
    expect(problems({ devices: { 'bad id!': [] } })[0]).toMatch(/^devices/);
    expect(problems(JSON.parse('{"devices":{"__proto__":[]}}'))).toEqual(['devices.__proto__: __proto__ cannot be a key here']);
    expect(problems({ rules: Array.from({ length: 201 }, (_, i) => ({ type: `r${i}`, metric: 'rssi', op: '<', raise: 1 })) })[0]).toMatch(/^rules: /);
  });

  it('reads If-Match as a version, * or none as any, anything else as malformed', () => {
    expect(expectedVersion('"7"')).toBe(7);
    expect(expectedVersion('W/"12"')).toBe(12);
    expect(expectedVersion('3')).toBe(3);
    expect(expectedVersion('*')).toBeNull();
    expect(expectedVersion('')).toBeNull();
    expect(expectedVersion('"abc"')).toBeUndefined();
    expect(expectedVersion('"1", "2"')).toBeUndefined();
    expect(expectedVersion('"7')).toBeUndefined();
    expect(expectedVersion('7"')).toBeUndefined();
  });
});

describe('compiled rule sets', () => {
  const set = compile({
    rules: [{ type: 'low_battery', metric: 'battery_level', op: '<', raise: 30, clear: 35, severity: 'major' }, { type: 'weak', metric: 'rssi', op: '<', raise: -90 }],
    device_types: { tracker: [{ type: 'low_battery', enabled: false }, { type: 'fast', metric: 'metrics.speed', op: '>', raise: 100 }] },
    devices: { d9: [{ type: 'weak', metric: 'rssi', op: '<', raise: -70 }, { metric: 'metrics.t', stale_after_s: 60 }] },
  });
  const types = (deviceId: string, type: string | null) => [...set.rulesFor(deviceId, type).byType.keys()].sort();

  it('layers built-ins, rules for all, per type and per device, by type', () => {
    expect(types('d1', null)).toEqual(['error_rate_spike', 'low_battery', 'performance_degradation', 'weak']);
    expect(set.rulesFor('d1', null).thresholds.find((r) => r.type === 'low_battery')).toMatchObject({ raise: 30, clear: 35, severity: 'major' });
    expect(types('d1', 'tracker')).toEqual(['error_rate_spike', 'fast', 'performance_degradation', 'weak']);
    expect(types('d9', 'tracker')).toEqual(['error_rate_spike', 'fast', 'performance_degradation', 'stale:metrics.t', 'weak']);
    expect(set.rulesFor('d9', null).thresholds.find((r) => r.type === 'weak')?.raise).toBe(-70);
    expect(set.rulesFor('d9', null).stale.map((r) => r.type)).toEqual(['stale:metrics.t']);
  });

  it('answers the same list object for every message (nothing compiled on the hot path)', () => {
    expect(set.rulesFor('d1', 'tracker')).toBe(set.rulesFor('d2', 'tracker'));
    expect(set.rulesFor('d9', 'tracker')).toBe(set.rulesFor('d9', 'tracker'));
    expect(set.rulesFor('d9', null)).not.toBe(set.rulesFor('d9', 'tracker'));
  });
});

/** Insights fed by hand on a fake clock: every alert transition is recorded. */
function harness(rules: CompiledRuleSet) {
  const transitions: { type: string; transition: AlertTransition; severity: string; data: Record<string, unknown> }[] = [];
  const insights = new Insights(
    {
      weights: { availability: 30, battery: 20, signal: 15, error_rate: 15, response_time: 10, freshness: 10 },
      step: 1,
      minScoreIntervalMs: 1000,
      rules,
      zscoreMetrics: [],
      zscoreThreshold: 4,
      offlineAlertMs: 300_000,
      timeoutMsOf: () => 60_000,
    },
    {
      healthScore: () => undefined,
      alert: (_s: DeviceState, a: Alert, transition: AlertTransition) => transitions.push({ type: a.type, transition, severity: a.severity, data: { ...a.data } }),
    },
  );
  const state = blankState('d1');
  state.status = 'online';
  const send = (fields: Partial<Telemetry>) => {
    const now = Date.now();
    insights.onTelemetry(state, { deviceId: 'd1', ts: now, receivedAt: now, batteryLevel: null, rssi: null, responseTimeMs: null, errorRate: null, metrics: null, ...fields }, now);
  };
  return { insights, transitions, state, send };
}

describe('escalation, staleness and rule changes (fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-12-01T00:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('raises the severity once the alert has held long enough, step by step, once per step', () => {
    const { transitions, send } = harness(
      compile({
        rules: [{ type: 'low_battery', metric: 'battery_level', op: '<', raise: 20, clear: 25, severity: 'minor', escalation: [{ after_s: 300, severity: 'major' }, { after_s: 900, severity: 'critical' }] }],
      }),
    );
    send({ batteryLevel: 15 });
    expect(transitions).toEqual([expect.objectContaining({ type: 'low_battery', transition: 'raised', severity: 'minor' })]);
    vi.advanceTimersByTime(299_000);
    send({ batteryLevel: 14 });
    expect(transitions).toHaveLength(1);
    vi.advanceTimersByTime(1000);
    send({ batteryLevel: 14 });
    send({ batteryLevel: 14 });
    expect(transitions).toHaveLength(2);
    expect(transitions[1]).toMatchObject({ transition: 'updated', severity: 'major', data: { escalated_from: 'minor', value: 14 } });
    vi.advanceTimersByTime(600_000);
    send({ batteryLevel: 22 }); // between clear and raise: still active, and now critical
    expect(transitions[2]).toMatchObject({ transition: 'updated', severity: 'critical', data: { escalated_from: 'major' } });
    send({ batteryLevel: 30 });
    expect(transitions.map((t) => t.transition)).toEqual(['raised', 'updated', 'updated', 'cleared']);
    expect(transitions[3]!.severity).toBe('critical');
  });

  it('raises stale:<metric> when a metric stops arriving though the device reports, and clears it when it returns', () => {
    const { transitions, send } = harness(compile({ rules: [{ metric: 'metrics.temperature', stale_after_s: 120, severity: 'major' }] }));
    send({ batteryLevel: 80 }); // never seen yet: nothing to be stale
    send({ metrics: { temperature: 21 } });
    vi.advanceTimersByTime(119_000);
    send({ batteryLevel: 80 });
    expect(transitions).toEqual([]);
    vi.advanceTimersByTime(1000);
    send({ batteryLevel: 80, metrics: { humidity: 40 } });
    expect(transitions).toEqual([
      { type: 'stale:metrics.temperature', transition: 'raised', severity: 'major', data: { metric: 'metrics.temperature', last_value_at: '2026-12-01T00:00:00.000Z', stale_after_s: 120 } },
    ]);
    send({ batteryLevel: 80 });
    expect(transitions).toHaveLength(1);
    vi.advanceTimersByTime(5000);
    send({ metrics: { temperature: 22 } });
    expect(transitions[1]).toMatchObject({ type: 'stale:metrics.temperature', transition: 'cleared', data: { cleared_with: 22 } });
  });

  it('judges the next message by a new version, and clears alerts whose rule was removed', () => {
    const { insights, transitions, send } = harness(compile({ rules: [{ type: 'hot', metric: 'metrics.t', op: '>', raise: 30 }] }, 1));
    send({ metrics: { t: 35 } });
    expect(transitions.map((t) => `${t.type} ${t.transition}`)).toEqual(['hot raised']);
    insights.setRules(compile({ rules: [{ type: 'cold', metric: 'metrics.t', op: '<', raise: 40 }] }, 2));
    send({ metrics: { t: 35 } });
    expect(transitions.map((t) => `${t.type} ${t.transition}`)).toEqual(['hot raised', 'hot cleared', 'cold raised']);
    expect(transitions[1]!.data).toMatchObject({ cleared_because: 'rule_removed' });
    // A device override turns the built-in low_battery rule off for d1 only.
    insights.setRules(compile({ rules: [{ type: 'cold', metric: 'metrics.t', op: '<', raise: 40 }], devices: { d1: [{ type: 'low_battery', enabled: false }] } }, 3));
    send({ batteryLevel: 5, metrics: { t: 35 } });
    expect(transitions.filter((t) => t.type === 'low_battery')).toEqual([]);
  });

  it('clears an alert whose rule stops applying when the device type changes, and a restored alert whose rule is gone', () => {
    const { insights, transitions, state, send } = harness(compile({ rules: [{ type: 'hot', metric: 'metrics.t', op: '>', raise: 30, device_type: 'oven' }] }));
    state.type = 'oven';
    send({ metrics: { t: 35 } });
    state.type = 'fridge';
    send({ metrics: { t: 35 } });
    expect(transitions.map((t) => `${t.type} ${t.transition} ${String(t.data.cleared_because ?? '')}`)).toEqual(['hot raised ', 'hot cleared rule_removed']);
    const restored: Alert = { id: 'r1', deviceId: 'd2', type: 'gone', severity: 'minor', state: 'raised', data: {}, raisedAt: 0, updatedAt: 0, clearedAt: null, acknowledgedAt: null, acknowledgedBy: null };
    insights.restoreAlert(restored);
    const other = blankState('d2');
    other.status = 'online';
    insights.onTelemetry(other, { deviceId: 'd2', ts: Date.now(), receivedAt: Date.now(), batteryLevel: 90, rssi: null, responseTimeMs: null, errorRate: null, metrics: null }, Date.now());
    expect(transitions.at(-1)).toMatchObject({ type: 'gone', transition: 'cleared', data: { cleared_because: 'rule_removed' } });
  });
});
