import { describe, expect, it } from 'vitest';
import { EwmaStats } from '../../src/domain/alert-rules.js';
import { ruleSchema } from '../../src/domain/rule-set.js';
import { computeHealth, linear } from '../../src/domain/health-score.js';
import { RollingMetricsTable } from '../../src/domain/rolling-metrics.js';
import { initialRuleSet, loadConfig } from '../../src/config.js';

const base = { online: true, uptime24h: 1, flapping: false, battery: 100, rssi: -50, errorRate: 0, responseTimeMs: 100, silenceMs: 0, timeoutMs: 60_000 };

describe('health score', () => {
  it('is 100 for a perfect device and follows the documented examples', () => {
    expect(computeHealth(base).score).toBe(100);
    expect(computeHealth({ ...base, battery: 30 }).score).toBe(90);
    // Offline with 50 % uptime: availability 25 → (30·25 + 70·100) / 100 = 77.5
    expect(computeHealth({ ...base, online: false, uptime24h: 0.5 }).score).toBe(77.5);
    // Flapping costs availability 25 points: (30·75 + 70·100) / 100 = 92.5
    expect(computeHealth({ ...base, flapping: true }).score).toBe(92.5);
  });

  it('leaves out what a device does not report and renormalises the weights', () => {
    const r = computeHealth({ ...base, battery: null, rssi: null, responseTimeMs: null, errorRate: 0.1 });
    expect(Object.keys(r.components).sort()).toEqual(['availability', 'error_rate', 'freshness']);
    // error 0.1 → 50; (30·100 + 15·50 + 10·100) / 55 = 86.4
    expect(r.score).toBe(86.4);
  });

  it('scores each component linearly between its documented bounds', () => {
    expect(linear(10, 10, 50)).toBe(0);
    expect(linear(50, 10, 50)).toBe(100);
    expect(linear(-75, -100, -50)).toBe(50);
    expect(linear(1100, 2000, 200)).toBe(50);
    expect(computeHealth({ ...base, silenceMs: 60_000 }).components.freshness?.score).toBe(0);
    expect(computeHealth({ ...base, silenceMs: 15_000 }).components.freshness?.score).toBe(100);
  });
});

describe('alert rules', () => {
  it('rejects a clear threshold on the wrong side of the raise threshold', () => {
    expect(ruleSchema.safeParse({ type: 't', metric: 'battery_level', op: '<', raise: 20, clear: 15 }).success).toBe(false);
    expect(ruleSchema.safeParse({ type: 't', metric: 'metrics.temperature', op: '>', raise: 30, clear: 28 }).success).toBe(true);
  });

  it('names a bad ALERT_RULES entry at start', () => {
    expect(() => loadConfig({ ALERT_RULES: '[{"type":"x","metric":"nonsense","op":">","raise":1}]' })).toThrow(/ALERT_RULES\[0\.metric\]/);
    expect(() => loadConfig({ ALERT_RULES: 'not json' })).toThrow(/ALERT_RULES: not valid JSON/);
    expect(initialRuleSet(loadConfig({ ALERT_RULES: '[{"type":"hot","metric":"metrics.t","op":">","raise":30,"for_s":2}]' }))?.rules[0]).toMatchObject({ type: 'hot', for_s: 2 });
  });

  it('the z-score detector judges only after warm-up and flags an outlier', () => {
    const stats = new EwmaStats();
    for (let i = 0; i < 20; i++) expect(stats.score(20 + (i % 2))).toBeNull();
    for (let i = 0; i < 10; i++) expect(Math.abs(stats.score(20 + (i % 2))!)).toBeLessThan(2);
    const z = stats.score(40);
    expect(z).not.toBeNull();
    expect(Math.abs(z!)).toBeGreaterThan(4);
  });
});

describe('rolling metrics', () => {
  it('keeps the last 10 response times and 24 hourly buckets in constant memory', () => {
    const m = new RollingMetricsTable();
    const row = 1500; // in the second chunk of rows
    m.reset(row);
    const t0 = Date.UTC(2026, 0, 1);
    const msg = (at: number, rt: number) => ({ deviceId: 'd', ts: at, receivedAt: at, batteryLevel: 50, rssi: -60, responseTimeMs: rt, errorRate: 0.1, metrics: null });
    for (let i = 0; i < 15; i++) m.add(row, msg(t0 + i * 1000, i < 5 ? 5000 : 100));
    expect([m.recentResponseMean(row), m.recentSamples(row)]).toEqual([100, 10]);
    expect(m.summary24h(row, t0 + 20_000)).toMatchObject({ count: 15, maxResponseTimeMs: 5000, avgBattery: 50, avgErrorRate: expect.closeTo(0.1, 5) });
    expect([m.lastBattery(row), m.lastRssi(row), m.lastErrorRate(row)]).toEqual([50, -60, expect.closeTo(0.1, 5)]);
    // 25 hours later the old hours have rolled out.
    m.add(row, msg(t0 + 25 * 3_600_000, 200));
    expect(m.summary24h(row, t0 + 25 * 3_600_000)).toMatchObject({ count: 1, maxResponseTimeMs: 200 });
  });

  it('keeps rows apart, and a reset row starts empty', () => {
    const m = new RollingMetricsTable();
    const t0 = Date.UTC(2026, 0, 1);
    m.reset(0);
    m.reset(1);
    m.add(0, { deviceId: 'a', ts: t0, receivedAt: t0, batteryLevel: 10, rssi: null, responseTimeMs: 300, errorRate: null, metrics: null });
    expect(m.summary24h(1, t0)).toMatchObject({ count: 0, avgBattery: null });
    expect([m.lastBattery(1), m.recentResponseMean(1), m.recentSamples(1)]).toEqual([null, null, 0]);
    m.reset(0);
    expect(m.summary24h(0, t0)).toMatchObject({ count: 0, avgBattery: null, maxResponseTimeMs: null });
    expect(m.lastBattery(0)).toBeNull();
  });

  it('accounts online time for uptime over 24 h', () => {
    const m = new RollingMetricsTable();
    m.reset(0);
    const t0 = Date.UTC(2026, 0, 1);
    m.addOnlineTime(0, t0, t0 + 3_600_000);
    expect(m.uptime24h(0, t0 + 7_200_000, t0)).toBeCloseTo(0.5, 5);
  });
});
