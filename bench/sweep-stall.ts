/**
 * `node --expose-gc --import tsx bench/sweep-stall.ts [devices]`: the longest time the periodic health
 * sweep holds the event loop, in process (no sockets, so a shared machine disturbs it far less than an
 * end-to-end latency run). Insights over N devices that each sent one reading; then the full sweep
 * (re-score every device, as HEALTH_SWEEP_CRON runs it) and the offline check (rescore false, every
 * OFFLINE_ALERT_CHECK_S), each timed as its longest synchronous stretch between event-loop turns, and
 * in total. Prints JSON.
 */
import { DEFAULT_RULE_SET } from '../src/domain/compiled-rules.js';
import { blankState } from '../src/domain/device-state.js';
import { Insights } from '../src/hub/insights.js';

const devices = Number(process.argv[2] ?? 100_000);
const insights = new Insights(
  {
    weights: { availability: 30, battery: 20, signal: 15, error_rate: 15, response_time: 10, freshness: 10 },
    step: 1,
    minScoreIntervalMs: 1000,
    rules: DEFAULT_RULE_SET,
    zscoreMetrics: [],
    zscoreThreshold: 4,
    offlineAlertMs: 300_000,
    timeoutMsOf: () => 60_000,
  },
  { healthScore: () => undefined, alert: () => undefined },
);
const states = Array.from({ length: devices }, (_, i) => {
  const state = blankState(`bench-${i}`);
  state.status = 'online';
  return state;
});
const start = Date.now();
for (const s of states) insights.onTelemetry(s, { deviceId: s.id, ts: start, receivedAt: start, batteryLevel: 80, rssi: -60, responseTimeMs: 100, errorRate: 0.01, metrics: null }, start);

/** Runs `sweep`, then yields turn after turn until `turns` pass with no work; the longest stretch and the total, ms. */
async function timed(sweep: () => void): Promise<{ longestMs: number; totalMs: number }> {
  const began = performance.now();
  sweep();
  let longest = performance.now() - began;
  let last = performance.now();
  let workEnd = last;
  for (let quiet = 0; quiet < 3; ) {
    await new Promise((r) => setImmediate(r));
    const now = performance.now();
    const stretch = now - last;
    if (stretch > 0.2) {
      longest = Math.max(longest, stretch);
      workEnd = now;
      quiet = 0;
    } else quiet++;
    last = now;
  }
  return { longestMs: longest, totalMs: workEnd - began };
}

const results: Record<string, { longestMs: number; totalMs: number }> = {};
for (let round = 0; round < 3; round++) {
  (globalThis as { gc?: () => void }).gc?.();
  results[`full sweep ${round}`] = await timed(() => insights.sweep(states, start + 60_000 * (round + 1), true));
  results[`offline check ${round}`] = await timed(() => insights.sweep(states, start + 60_000 * (round + 1), false));
}
process.stdout.write(`${JSON.stringify({ devices, results })}\n`);
