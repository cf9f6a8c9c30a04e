import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EwmaStats } from '../../src/domain/alert-rules.js';
import { CompiledRuleSet, DEFAULT_RULE_SET } from '../../src/domain/compiled-rules.js';
import { DEFAULT_WEIGHTS, type Weights } from '../../src/domain/health-score.js';
import { ruleSetSchema, type RuleSetInput } from '../../src/domain/rule-set.js';
import type { Telemetry } from '../../src/domain/telemetry.js';
import { Insights, type InsightOptions } from '../../src/hub/insights.js';
import type { Alert, AlertTransition, ScoredHealth } from '../../src/domain/alert.js';
import { blankState, type DeviceState } from '../../src/domain/device-state.js';

// Insights on a fake clock with a recording sink: every score pushed and every alert transition is
// kept, a copy of the alert as it was at that moment. Behaviour as docs/health-and-alerts.md states it.

const START = Date.parse('2026-12-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const only = (component: keyof Weights): Weights => ({ ...Object.fromEntries(Object.keys(DEFAULT_WEIGHTS).map((k) => [k, 0])), [component]: 100 }) as Weights;
const compile = (input: RuleSetInput) => new CompiledRuleSet(1, ruleSetSchema.parse(input));

interface Pushed {
  readonly deviceId: string;
  readonly score: number;
  readonly previous: number | null;
}
interface Transition {
  readonly deviceId: string;
  readonly id: string;
  readonly type: string;
  readonly transition: AlertTransition;
  readonly state: Alert['state'];
  readonly severity: string;
  readonly data: Record<string, unknown>;
}

function harness(overrides: Partial<InsightOptions> = {}) {
  const scores: Pushed[] = [];
  const alerts: Transition[] = [];
  const insights = new Insights(
    {
      weights: DEFAULT_WEIGHTS,
      step: 1,
      minScoreIntervalMs: 1000,
      rules: DEFAULT_RULE_SET,
      zscoreMetrics: [],
      zscoreThreshold: 4,
      offlineAlertMs: 300_000,
      timeoutMsOf: () => 60_000,
      ...overrides,
    },
    {
      healthScore: (state: DeviceState, health: ScoredHealth, previous: number | null) => void scores.push({ deviceId: state.id, score: health.score, previous }),
      alert: (state: DeviceState, a: Alert, transition: AlertTransition) =>
        void alerts.push({ deviceId: state.id, id: a.id, type: a.type, transition, state: a.state, severity: a.severity, data: { ...a.data } }),
    },
  );
  const states = new Map<string, DeviceState>();
  const device = (id = 'd1') => {
    let state = states.get(id);
    if (state === undefined) {
      state = blankState(id);
      state.status = 'online';
      states.set(id, state);
    }
    return state;
  };
  /** One telemetry message from the device, now. */
  const send = (fields: Partial<Telemetry>, id = 'd1') => {
    const now = Date.now();
    const state = device(id);
    state.lastSeen = now;
    insights.onTelemetry(state, { deviceId: id, ts: now, receivedAt: now, batteryLevel: null, rssi: null, responseTimeMs: null, errorRate: null, metrics: null, ...fields }, now);
  };
  /** The presence tracker's calls around a status change. */
  const setStatus = (status: 'online' | 'offline', id = 'd1') => {
    const state = device(id);
    insights.beforeStatusChange(state, Date.now());
    state.status = status;
    insights.afterStatusChange(state, Date.now());
  };
  // The cron's sweep re-scores every device; the offline check looks only at the devices whose alert is due.
  const sweep = (rescore: boolean, inIncident?: (deviceId: string) => boolean) =>
    rescore ? insights.sweep(states.values(), Date.now(), true, inIncident) : insights.raiseDueOfflineAlerts(Date.now(), (id) => states.get(id), inIncident);
  const seen = () => alerts.map((a) => `${a.type} ${a.transition}`);
  return { insights, scores, alerts, device, send, setStatus, sweep, seen };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(START);
});
afterEach(() => void vi.useRealTimers());

describe('Insights: health scores', () => {
  it('pushes a score when it moved at least the step from the last one pushed (not the last one computed)', () => {
    const { insights, scores, send } = harness({ weights: only('battery'), step: 5 });
    send({ batteryLevel: 100 });
    expect(scores).toEqual([{ deviceId: 'd1', score: 100, previous: null }]);
    vi.advanceTimersByTime(1000);
    send({ batteryLevel: 49 }); // 97.5: moved 2.5
    expect(scores).toHaveLength(1);
    expect(insights.health('d1')).toMatchObject({ score: 97.5, at: Date.now() });
    vi.advanceTimersByTime(1000);
    send({ batteryLevel: 48 }); // 95: moved 5 from the 100 pushed (2.5 from the 97.5 computed)
    expect(scores).toEqual([
      { deviceId: 'd1', score: 100, previous: null },
      { deviceId: 'd1', score: 95, previous: 100 },
    ]);
  });

  it('scores on telemetry at most once per interval per device; the sweep scores at once', () => {
    const { insights, scores, send, sweep } = harness({ weights: only('battery') });
    send({ batteryLevel: 100 });
    vi.advanceTimersByTime(999);
    send({ batteryLevel: 10 });
    expect(insights.health('d1')?.score).toBe(100);
    expect(scores).toHaveLength(1);
    sweep(true);
    expect(scores.at(-1)).toEqual({ deviceId: 'd1', score: 0, previous: 100 });
    // Another device is not held back by d1's interval.
    send({ batteryLevel: 30 }, 'd2');
    expect(scores.at(-1)).toEqual({ deviceId: 'd2', score: 50, previous: null });
  });

  it('scores on every status change, inside the interval too: offline now costs half the availability', () => {
    const { scores, send, setStatus } = harness({ weights: only('availability') });
    send({});
    expect(scores).toEqual([{ deviceId: 'd1', score: 100, previous: null }]);
    vi.advanceTimersByTime(100);
    setStatus('offline'); // online the whole 100 ms followed: uptime 1, offline now → 50
    expect(scores.at(-1)).toEqual({ deviceId: 'd1', score: 50, previous: 100 });
    vi.advanceTimersByTime(100);
    setStatus('online'); // up half the time followed, online now → 75
    expect(scores.at(-1)).toEqual({ deviceId: 'd1', score: 75, previous: 50 });
  });

  it('the sweep lowers the freshness of a quiet device from its offline timeout; without rescoring it skips online devices', () => {
    const { scores, send, sweep } = harness({ weights: only('freshness'), timeoutMsOf: () => 60_000 });
    send({});
    vi.advanceTimersByTime(15_000);
    sweep(true); // silent a quarter of the timeout: still 100
    expect(scores).toEqual([{ deviceId: 'd1', score: 100, previous: null }]);
    vi.advanceTimersByTime(15_000);
    sweep(false);
    expect(scores).toHaveLength(1);
    sweep(true); // silent 30 s of 60: 2/3 of the way from 60 s (0) to 15 s (100)
    expect(scores.at(-1)).toEqual({ deviceId: 'd1', score: 66.7, previous: 100 });
    vi.advanceTimersByTime(30_000);
    sweep(true);
    expect(scores.at(-1)).toEqual({ deviceId: 'd1', score: 0, previous: 66.7 });
  });

  it('a restored score is answered before the first message and is the baseline of the next push', () => {
    const { insights, scores, send } = harness({ weights: only('battery'), step: 5 });
    insights.restoreHealth('d1', { score: 98, components: {}, at: START - 60_000 });
    expect(insights.health('d1')?.score).toBe(98);
    expect(insights.healthOfAll()).toEqual([{ deviceId: 'd1', score: 98 }]);
    send({ batteryLevel: 100 }); // 100: moved 2 from the restored 98
    expect(scores).toEqual([]);
    vi.advanceTimersByTime(1000);
    send({ batteryLevel: 40 }); // 75
    expect(scores).toEqual([{ deviceId: 'd1', score: 75, previous: 98 }]);
  });
});

describe('Insights: threshold rules', () => {
  it('low battery: raised under 20, held between (hysteresis), one active per type, cleared at 25', () => {
    const { alerts, send, seen } = harness();
    send({ batteryLevel: 19 });
    expect(alerts).toEqual([
      {
        deviceId: 'd1',
        id: expect.any(String),
        type: 'low_battery',
        transition: 'raised',
        state: 'raised',
        severity: 'minor',
        data: { value: 19, metric: 'battery_level', threshold: 20, clear: 25, since: iso(START) },
      },
    ]);
    for (const level of [22, 18, 10, 24.9]) send({ batteryLevel: level });
    expect(seen()).toEqual(['low_battery raised']);
    send({ batteryLevel: 25 });
    expect(alerts[1]).toMatchObject({ id: alerts[0]!.id, transition: 'cleared', state: 'cleared', data: { cleared_with: 25 } });
    send({ batteryLevel: 19 });
    expect(seen()).toEqual(['low_battery raised', 'low_battery cleared', 'low_battery raised']);
    expect(alerts[2]!.id).not.toBe(alerts[0]!.id);
  });

  it('error rate spike above 0.10 clears only at 0.05; a message without the reading judges nothing', () => {
    const { alerts, send, seen } = harness();
    send({ errorRate: 0.1 });
    expect(alerts).toEqual([]);
    send({ errorRate: 0.11 });
    expect(alerts[0]).toMatchObject({ type: 'error_rate_spike', severity: 'major' });
    send({ errorRate: 0.06 });
    send({ batteryLevel: 90 });
    expect(seen()).toEqual(['error_rate_spike raised']);
    send({ errorRate: 0.05 });
    expect(seen()).toEqual(['error_rate_spike raised', 'error_rate_spike cleared']);
  });

  it('performance degradation judges the mean of the last 10 response times once there are 5', () => {
    const { alerts, send, seen } = harness();
    for (let i = 0; i < 4; i++) send({ responseTimeMs: 1500 });
    expect(alerts).toEqual([]);
    send({ responseTimeMs: 1500 });
    expect(alerts[0]).toMatchObject({ type: 'performance_degradation', severity: 'major', data: { value: 1500 } });
    // Mean of 10 with five 1500s: 900 after five 300s — between 800 and 1000, held.
    for (let i = 0; i < 5; i++) send({ responseTimeMs: 300 });
    expect(seen()).toEqual(['performance_degradation raised']);
    send({ responseTimeMs: 300 }); // 830
    send({ responseTimeMs: 300 }); // 760
    expect(seen()).toEqual(['performance_degradation raised', 'performance_degradation cleared']);
  });

  it('a minimum duration raises only once the value has been past it continuously for for_s; a dip starts it again', () => {
    const { alerts, send } = harness({ rules: compile({ rules: [{ type: 'hot', metric: 'metrics.t', op: '>', raise: 30, severity: 'critical', for_s: 60 }] }) });
    send({ metrics: { t: 35 } });
    vi.advanceTimersByTime(30_000);
    send({ metrics: { t: 25 } }); // back under: the 30 s so far do not count
    vi.advanceTimersByTime(10_000);
    const restarted = Date.now();
    send({ metrics: { t: 35 } });
    vi.advanceTimersByTime(59_999);
    send({ metrics: { t: 36 } });
    expect(alerts).toEqual([]);
    vi.advanceTimersByTime(1);
    send({ metrics: { t: 37 } });
    expect(alerts).toEqual([expect.objectContaining({ type: 'hot', transition: 'raised', severity: 'critical', data: expect.objectContaining({ value: 37, since: iso(restarted) }) })]);
  });

  it('a rule narrowed to a device type judges only devices of that type', () => {
    const { alerts, device, send } = harness({ rules: compile({ rules: [{ type: 'hot', metric: 'metrics.t', op: '>', raise: 30, device_type: 'oven' }] }) });
    send({ metrics: { t: 99 } }, 'plain');
    device('oven-1').type = 'oven';
    send({ metrics: { t: 99 } }, 'oven-1');
    expect(alerts.map((a) => a.deviceId)).toEqual(['oven-1']);
  });
});

describe('Insights: z-score anomalies', () => {
  const warmUp = (send: (f: Partial<Telemetry>) => void, shadow: EwmaStats, samples: number) => {
    for (let i = 0; i < samples; i++) {
      const t = 20 + (i % 2);
      send({ metrics: { temperature: t, humidity: 40 + (i % 2) } });
      shadow.score(t);
    }
  };

  it('raises anomaly:<metric> past the threshold after 20 samples, holds between 2 and the threshold, clears under 2', () => {
    const { alerts, send, seen } = harness({ zscoreMetrics: ['temperature'], zscoreThreshold: 4 });
    const shadow = new EwmaStats(); // the same statistics, to place values at a chosen z
    warmUp(send, shadow, 20);
    expect(alerts).toEqual([]);
    const spike = shadow.mean + 6 * Math.sqrt(shadow.variance);
    send({ metrics: { temperature: spike, humidity: 400 } }); // humidity is not watched
    shadow.score(spike);
    expect(alerts).toEqual([
      expect.objectContaining({ type: 'anomaly:temperature', transition: 'raised', severity: 'warning', data: expect.objectContaining({ value: spike, z: 6 }) }),
    ]);
    const between = shadow.mean + 3 * Math.sqrt(shadow.variance);
    send({ metrics: { temperature: between } });
    shadow.score(between);
    expect(seen()).toEqual(['anomaly:temperature raised']);
    send({ metrics: { temperature: shadow.mean } });
    expect(seen()).toEqual(['anomaly:temperature raised', 'anomaly:temperature cleared']);
  });

  it('judges nothing before 20 samples, and nothing at all unless metrics are named', () => {
    const early = harness({ zscoreMetrics: ['temperature'] });
    warmUp(early.send, new EwmaStats(), 19);
    early.send({ metrics: { temperature: 1000 } });
    expect(early.alerts).toEqual([]);
    const off = harness({ zscoreMetrics: [] });
    warmUp(off.send, new EwmaStats(), 30);
    off.send({ metrics: { temperature: 1000 } });
    expect(off.alerts).toEqual([]);
  });
});

describe('Insights: escalation and staleness', () => {
  it('an acknowledged alert still escalates, and keeps its acknowledgement', () => {
    const { insights, alerts, device, send } = harness({
      rules: compile({ rules: [{ type: 'low_battery', metric: 'battery_level', op: '<', raise: 20, clear: 25, severity: 'minor', escalation: [{ after_s: 300, severity: 'major' }] }] }),
    });
    send({ batteryLevel: 15 });
    const id = alerts[0]!.id;
    expect(insights.acknowledge(id, 'alice', Date.now(), () => device())).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'alice' });
    vi.advanceTimersByTime(300_000);
    send({ batteryLevel: 15 });
    expect(alerts.map((a) => `${a.transition} ${a.state} ${a.severity}`)).toEqual(['raised raised minor', 'acknowledged acknowledged minor', 'updated acknowledged major']);
    expect(alerts[2]!.data).toMatchObject({ escalated_from: 'minor', escalated_at: iso(Date.now()), value: 15 });
  });

  it('stale:<metric> is judged on telemetry only: a device that stops reporting is offline, not stale', () => {
    const { alerts, send, setStatus, sweep, seen } = harness({ rules: compile({ rules: [{ metric: 'metrics.t', stale_after_s: 60 }] }), offlineAlertMs: 120_000 });
    send({ metrics: { t: 1 } });
    setStatus('offline');
    vi.advanceTimersByTime(120_000);
    sweep(true);
    expect(seen()).toEqual(['device_offline raised']);
    setStatus('online');
    send({ batteryLevel: 50 }); // back, reporting, without the metric for 120 s: stale now
    expect(seen()).toEqual(['device_offline raised', 'device_offline cleared', 'stale:metrics.t raised']);
    expect(alerts[2]).toMatchObject({ severity: 'warning', data: { metric: 'metrics.t', last_value_at: iso(START), stale_after_s: 60 } });
  });
});

describe('Insights: offline alerts and outages', () => {
  it('raises one device_offline once the device has been offline offlineAlertMs, cleared when it returns', () => {
    const { alerts, setStatus, sweep, send, seen } = harness({ offlineAlertMs: 300_000 });
    send({});
    setStatus('offline');
    vi.advanceTimersByTime(299_999);
    sweep(false);
    expect(alerts).toEqual([]);
    vi.advanceTimersByTime(1);
    sweep(false);
    sweep(true);
    vi.advanceTimersByTime(600_000);
    sweep(false);
    expect(alerts).toEqual([expect.objectContaining({ type: 'device_offline', transition: 'raised', severity: 'major', data: { offline_since: iso(START) } })]);
    setStatus('online');
    expect(seen()).toEqual(['device_offline raised', 'device_offline cleared']);
  });

  it('a device that flaps raises none; the outage counts from its last going offline', () => {
    const { alerts, setStatus, sweep, send } = harness({ offlineAlertMs: 300_000 });
    send({});
    for (let i = 0; i < 5; i++) {
      setStatus('offline');
      vi.advanceTimersByTime(200_000);
      sweep(false);
      setStatus('online');
      vi.advanceTimersByTime(1000);
    }
    setStatus('offline');
    const since = Date.now();
    vi.advanceTimersByTime(299_000);
    sweep(false);
    expect(alerts).toEqual([]);
    vi.advanceTimersByTime(1000);
    sweep(false);
    expect(alerts).toEqual([expect.objectContaining({ type: 'device_offline', data: { offline_since: iso(since) } })]);
  });

  it('a device inside a mass-offline incident raises no device_offline of its own', () => {
    const { alerts, setStatus, sweep, send } = harness({ offlineAlertMs: 1000 });
    send({}, 'a');
    send({}, 'b');
    setStatus('offline', 'a');
    setStatus('offline', 'b');
    vi.advanceTimersByTime(5000);
    sweep(false, (id) => id === 'a');
    expect(alerts.map((a) => `${a.deviceId} ${a.type}`)).toEqual(['b device_offline']);
    // The incident closes while `a` is still offline: it gets its own alert at a later check.
    vi.advanceTimersByTime(1000);
    sweep(false, () => false);
    expect(alerts.map((a) => `${a.deviceId} ${a.type}`)).toEqual(['b device_offline', 'a device_offline']);
  });

  it('holds telemetry alerts through an outage: neither cleared nor raised again', () => {
    const { insights, alerts, setStatus, sweep, send, seen } = harness({ offlineAlertMs: 60_000 });
    send({ batteryLevel: 10 });
    setStatus('offline');
    vi.advanceTimersByTime(3_600_000);
    sweep(true);
    expect(seen()).toEqual(['low_battery raised', 'device_offline raised']);
    expect(insights.activeAlerts('d1').map((a) => a.type).sort()).toEqual(['device_offline', 'low_battery']);
    setStatus('online');
    send({ batteryLevel: 12 });
    expect(seen()).toEqual(['low_battery raised', 'device_offline raised', 'device_offline cleared']);
    expect(insights.allActiveAlerts().map((a) => a.id)).toEqual([alerts[0]!.id]);
  });
});

describe('Insights: acknowledgement and restore', () => {
  it('acknowledges a raised alert once; an unknown id is null; a cleared alert is no longer held', () => {
    const { insights, alerts, device, send } = harness();
    send({ batteryLevel: 10 });
    const id = alerts[0]!.id;
    expect(insights.alertDevice(id)).toBe('d1');
    expect(insights.acknowledge(id, 'alice', Date.now(), () => device())?.state).toBe('acknowledged');
    expect(insights.acknowledge(id, 'bob', Date.now(), () => device())?.acknowledgedBy).toBe('alice');
    expect(alerts.map((a) => a.transition)).toEqual(['raised', 'acknowledged']);
    expect(insights.acknowledge('no-such-alert', 'alice', Date.now(), () => device())).toBeNull();
    send({ batteryLevel: 30 });
    expect(alerts.at(-1)).toMatchObject({ transition: 'cleared', state: 'cleared' });
    expect(insights.alertDevice(id)).toBeNull();
    expect(insights.allActiveAlerts()).toEqual([]);
  });

  it('a restored alert is active before the device is heard from and is cleared by its rule like any other', () => {
    const { insights, alerts, send } = harness();
    const restored: Alert = { id: 'r1', deviceId: 'd1', type: 'low_battery', severity: 'minor', state: 'raised', data: { value: 15 }, raisedAt: START - 1000, updatedAt: START - 1000, clearedAt: null, acknowledgedAt: null, acknowledgedBy: null };
    insights.restoreAlert(restored);
    expect(insights.activeAlerts('d1').map((a) => a.id)).toEqual(['r1']);
    expect(insights.alertDevice('r1')).toBe('d1');
    send({ batteryLevel: 15 }); // still low: not raised a second time
    expect(alerts).toEqual([]);
    send({ batteryLevel: 50 });
    expect(alerts).toEqual([expect.objectContaining({ id: 'r1', transition: 'cleared', data: { value: 15, cleared_with: 50 } })]);
  });

  it('a deleted device: its owner clears its alerts (device_deleted), another instance drops them silently; a new device of that id starts afresh', () => {
    const owner = harness({ weights: only('battery') });
    owner.send({ batteryLevel: 10 });
    expect(owner.seen()).toEqual(['low_battery raised']);
    owner.insights.forget(owner.device(), Date.now(), true);
    expect(owner.alerts.at(-1)).toMatchObject({ transition: 'cleared', data: expect.objectContaining({ cleared_because: 'device_deleted' }) });
    expect(owner.insights.allActiveAlerts()).toEqual([]);
    expect([owner.insights.health('d1'), owner.insights.score('d1'), owner.insights.metricsSummary('d1', Date.now())]).toEqual([null, null, null]);
    owner.send({ batteryLevel: 90 });
    expect(owner.insights.metricsSummary('d1', Date.now())?.last24h).toMatchObject({ count: 1, avgBattery: 90 });
    expect(owner.scores.at(-1)).toEqual({ deviceId: 'd1', score: 100, previous: null });

    const other = harness();
    const restored: Alert = { id: 'r2', deviceId: 'd9', type: 'low_battery', severity: 'minor', state: 'raised', data: { value: 15 }, raisedAt: START - 1000, updatedAt: START - 1000, clearedAt: null, acknowledgedAt: null, acknowledgedBy: null };
    other.insights.restoreAlert(restored);
    other.insights.forget(other.device('d9'), Date.now(), false);
    expect(other.alerts).toEqual([]);
    expect([other.insights.alertDevice('r2'), other.insights.activeAlertCount('d9')]).toEqual([null, 0]);
  });

  it('keeps a restored score until the device is scored again, and reads it packed as it was', () => {
    const { insights, send } = harness({ weights: only('battery'), step: 50 });
    const restored: ScoredHealth = { score: 62.5, components: { battery: { value: 35, score: 62.5, weight: 100 } }, at: START - 5000 };
    insights.restoreHealth('d1', restored);
    insights.restoreHealth('d2', { ...restored, score: 40 });
    expect(insights.health('d1')).toEqual(restored);
    expect([insights.score('d1'), insights.score('d2'), insights.score('d3'), insights.health('d3')]).toEqual([62.5, 40, null, null]);
    expect(insights.healthOfAll()).toEqual([{ deviceId: 'd1', score: 62.5 }, { deviceId: 'd2', score: 40 }]);
    send({ batteryLevel: 36 }); // 65: within the step of the restored 62.5, so nothing pushed, but the newest score read
    expect(insights.health('d1')).toEqual({ score: 65, components: { battery: { value: 36, score: 65, weight: 100 } }, at: Date.now() });
    expect(insights.score('d1')).toBe(65);
    expect(insights.healthOfAll()).toEqual([{ deviceId: 'd1', score: 65 }, { deviceId: 'd2', score: 40 }]);
  });
});
