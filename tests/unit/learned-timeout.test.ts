import { describe, expect, it } from 'vitest';
import { ARRIVAL_CLASSES, arrivalTraces } from '../../bench/simulator/arrival-model.js';
import { replay } from '../../bench/learned-timeouts.js';
import { loadConfig } from '../../src/config.js';
import { IntervalLearner, learnedTimeout, learnedTimeoutSettings, type LearnedTimeoutSettings } from '../../src/domain/learned-timeout.js';
import { OfflineTimeouts } from '../../src/hub/offline-timeouts.js';
import { blankState } from '../../src/domain/device-state.js';

const settings: LearnedTimeoutSettings = { samples: 32, minSamples: 4, percentile: 95, factor: 2, minMs: 5_000, maxMs: 600_000 };

describe('learned timeouts', () => {
  it('is factor × the nearest-rank percentile, clamped', () => {
    const scratch = new Float64Array(32);
    const twenty = Array.from({ length: 20 }, (_, i) => (i + 1) * 1000); // 1 s … 20 s
    expect(learnedTimeout(twenty, 20, settings, scratch)).toBe(38_000); // p95 of 20 = the 19th = 19 s
    expect(learnedTimeout([1000, 1000, 1000, 1000], 4, settings, scratch)).toBe(5_000); // min clamp
    expect(learnedTimeout([500_000, 500_000], 2, settings, scratch)).toBe(600_000); // max clamp
    expect(learnedTimeout([3000, 1000, 2000], 3, { ...settings, percentile: 50, factor: 1, minMs: 1 }, scratch)).toBe(2000);
  });

  it('learns after minSamples, keeps the last `samples`, and lets one outage not stretch the timeout', () => {
    const scratch = new Float64Array(32);
    const learner = new IntervalLearner(settings);
    for (let i = 0; i < 3; i++) learner.observe(10_000, scratch);
    expect(learner.timeoutMs).toBeNull();
    expect(learner.warmupFloorMs).toBe(20_000);
    learner.observe(10_000, scratch);
    expect(learner.timeoutMs).toBe(20_000);
    learner.observe(3_600_000, scratch); // counted as maxMs, and the top one of 20 is above p95
    for (let i = 0; i < 15; i++) learner.observe(10_000, scratch);
    expect(learner.timeoutMs).toBe(20_000);
    for (let i = 0; i < 32; i++) learner.observe(60_000, scratch); // the device now reports every minute
    expect(learner.timeoutMs).toBe(120_000);
  });

  it('comes after the device and type settings, before the default, and says where it comes from', () => {
    const timeouts = new OfflineTimeouts(60_000, new Map([['sensor', 900_000]]), settings);
    const state = blankState('d1');
    expect([timeouts.of(state), timeouts.sourceOf(state)]).toEqual([60_000, 'default']);
    let at = 0;
    for (let i = 0; i < 6; i++) {
      timeouts.heard(state, at);
      state.lastSeen = at;
      at += 300_000;
    }
    expect([timeouts.of(state), timeouts.sourceOf(state)]).toEqual([600_000, 'learned']);
    state.type = 'sensor';
    expect([timeouts.of(state), timeouts.sourceOf(state)]).toEqual([900_000, 'type']);
    state.timeoutMs = 42_000;
    expect([timeouts.of(state), timeouts.sourceOf(state)]).toEqual([42_000, 'device']);
    const off = new OfflineTimeouts(60_000, undefined, null);
    off.heard(state, at);
    state.timeoutMs = null;
    state.type = null;
    expect([off.of(state), off.sourceOf(state)]).toEqual([60_000, 'default']);
  });

  it('is off unless LEARNED_TIMEOUTS=true, with the documented defaults', () => {
    expect(learnedTimeoutSettings(loadConfig({}))).toBeNull();
    expect(learnedTimeoutSettings(loadConfig({ LEARNED_TIMEOUTS: 'true' }))).toEqual({ samples: 64, minSamples: 8, percentile: 95, factor: 3, minMs: 10_000, maxMs: 86_400_000 });
  });

  it('replayed over irregular devices: fewer false offlines than a fixed 60 s, every outage still detected, fast devices detected sooner', () => {
    const traces = arrivalTraces(5, 3 * 3_600_000, 30 * 60_000, 7);
    const fixed = replay(traces, { OFFLINE_TIMEOUT_S: '60' });
    const learned = replay(traces, { OFFLINE_TIMEOUT_S: '60', LEARNED_TIMEOUTS: 'true' });
    const sum = (r: typeof fixed, f: (p: NonNullable<ReturnType<typeof fixed.get>>) => number) => ARRIVAL_CLASSES.reduce((a, k) => a + f(r.get(k)!), 0);
    expect(sum(learned, (p) => p.falseOfflines)).toBeLessThan(sum(fixed, (p) => p.falseOfflines) / 10);
    expect(sum(learned, (p) => p.detected)).toBe(ARRIVAL_CLASSES.length * 5 * 2);
    expect(learned.get('fast_1s')!.meanLagS).toBeLessThan(fixed.get('fast_1s')!.meanLagS / 3);
    // Only while learning: at most four of its first long gaps per device, against one in every cycle at 60 s.
    expect(learned.get('bursty_120s')!.falseOfflines).toBeLessThanOrEqual(4 * 5);
    expect(fixed.get('bursty_120s')!.falseOfflines).toBeGreaterThan(50 * 5);
  });
});
