import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_RULE_SET } from '../../src/domain/compiled-rules.js';
import { blankState, type DeviceState } from '../../src/domain/device-state.js';
import { Insights } from '../../src/hub/insights.js';

/** Insights over `count` devices that each sent one reading; counts the scores pushed (the sink). */
function fleet(count: number) {
  const scored: string[] = [];
  const alerts: string[] = [];
  const insights = new Insights(
    {
      weights: { availability: 30, battery: 20, signal: 15, error_rate: 15, response_time: 10, freshness: 10 },
      step: 0.001,
      minScoreIntervalMs: 1000,
      rules: DEFAULT_RULE_SET,
      zscoreMetrics: [],
      zscoreThreshold: 4,
      offlineAlertMs: 60_000,
      timeoutMsOf: () => 60_000,
    },
    { healthScore: (s) => scored.push(s.id), alert: (s) => alerts.push(s.id) },
  );
  const states: DeviceState[] = [];
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const state = blankState(`d${i}`);
    state.status = 'online';
    state.lastSeen = now;
    insights.onTelemetry(state, { deviceId: state.id, ts: now, receivedAt: now, batteryLevel: 80, rssi: -60, responseTimeMs: 100, errorRate: 0, metrics: null }, now);
    states.push(state);
  }
  scored.length = 0;
  return { insights, states, scored, alerts };
}

describe('the periodic sweep over a large fleet', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-12-01T00:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('re-scores a bounded slice per event-loop turn, and every device by the end', () => {
    const { insights, states, scored } = fleet(10_000);
    vi.advanceTimersByTime(40_000); // freshness decayed: every score moves
    insights.sweep(states, Date.now(), true);
    const firstTurn = scored.length;
    expect(firstTurn).toBeGreaterThan(0);
    expect(firstTurn).toBeLessThan(10_000); // the loop was given back before the whole fleet
    vi.runAllTimers(); // the following turns (setImmediate)
    expect(new Set(scored).size).toBe(10_000);
  });

  it('raises every due offline alert across slices', () => {
    const { insights, states, alerts } = fleet(5000);
    for (const state of states) {
      insights.beforeStatusChange(state, Date.now());
      state.status = 'offline';
      insights.afterStatusChange(state, Date.now());
    }
    vi.advanceTimersByTime(61_000);
    const byId = new Map(states.map((s) => [s.id, s]));
    insights.raiseDueOfflineAlerts(Date.now(), (id) => byId.get(id));
    expect(alerts.length).toBeLessThan(5000); // not all in one turn
    vi.runAllTimers();
    expect(new Set(alerts).size).toBe(5000);
  });

  it('the offline check looks only at devices whose alert is due, not at the fleet (#21)', () => {
    const { insights, states, alerts } = fleet(20_000);
    for (const state of states.slice(0, 10)) {
      insights.beforeStatusChange(state, Date.now());
      state.status = 'offline';
      insights.afterStatusChange(state, Date.now());
    }
    vi.advanceTimersByTime(61_000);
    const looked: string[] = [];
    const byId = new Map(states.map((s) => [s.id, s]));
    insights.raiseDueOfflineAlerts(Date.now(), (id) => (looked.push(id), byId.get(id)));
    expect(looked.length).toBe(10); // 19,990 online devices never looked at
    expect(alerts.length).toBe(10);
    insights.raiseDueOfflineAlerts(Date.now() + 60_000, (id) => (looked.push(id), byId.get(id)));
    expect(looked.length).toBe(10); // raised once: nothing due any more
  });

  it('sweeps a small fleet at once, within the call', () => {
    const { insights, states, scored } = fleet(100);
    vi.advanceTimersByTime(40_000);
    insights.sweep(states, Date.now(), true);
    expect(new Set(scored).size).toBe(100);
  });

  it('reports a later slice that throws to its fault handler, never past it', () => {
    const { insights, states } = fleet(2000);
    vi.advanceTimersByTime(40_000);
    const faults: unknown[] = [];
    let judged = 0;
    // The 1,500th device's iteration throws: beyond the first slice, outside the caller's try.
    const failing: Iterable<DeviceState> = {
      *[Symbol.iterator]() {
        for (const state of states) {
          if (++judged === 1500) throw new Error('injected');
          yield state;
        }
      },
    };
    insights.sweep(failing, Date.now(), true, () => false, (error) => faults.push(error));
    expect(() => vi.runAllTimers()).not.toThrow();
    expect(faults).toEqual([new Error('injected')]);
  });
});
