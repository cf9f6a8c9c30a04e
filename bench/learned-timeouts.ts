import { parseArgs } from 'node:util';
import { learnedTimeoutSettings } from '../src/domain/learned-timeout.js';
import { loadConfig } from '../src/config.js';
import { OfflineTimeouts } from '../src/hub/offline-timeouts.js';
import { ARRIVAL_CLASSES, arrivalTraces, type ArrivalClass, type ArrivalTrace } from './simulator/arrival-model.js';
import { blankState } from '../src/domain/device-state.js';

/** Per device class: how a timeout policy did over the replay. */
export interface PolicyResult {
  readonly devices: number;
  readonly messages: number;
  /** Offline transitions while the device was still reporting (its next message came after the deadline, outside its real outage). */
  readonly falseOfflines: number;
  /** Real outages (two per device) detected before they ended, and the mean and worst time from the last message before it to the offline transition (s). */
  readonly detected: number;
  readonly meanLagS: number;
  readonly maxLagS: number;
}

/**
 * Replays arrival times through the hub's own timeout code (OfflineTimeouts, so the learner, its
 * clamp and its precedence are the shipped ones): after each message the deadline is the message
 * time plus the timeout in force; a deadline passing before the next message is an offline
 * transition — false when the device had not really gone, a detection when it had — and the
 * device is offline when its next message comes, as in the hub.
 */
export function replay(traces: readonly ArrivalTrace[], env: Record<string, string>): Map<ArrivalClass, PolicyResult> {
  const config = loadConfig(env);
  const out = new Map<ArrivalClass, PolicyResult>();
  for (const kind of ARRIVAL_CLASSES) {
    const timeouts = new OfflineTimeouts(config.OFFLINE_TIMEOUT_S * 1000, undefined, learnedTimeoutSettings(config));
    let messages = 0;
    let falseOfflines = 0;
    const lags: number[] = [];
    const ofKind = traces.filter((t) => t.kind === kind);
    for (const trace of ofKind) {
      const state = blankState(trace.id);
      state.status = 'online';
      trace.arrivals.forEach((at, i) => {
        timeouts.heard(state, at);
        state.lastSeen = at;
        state.status = 'online';
        messages++;
        const deadline = at + timeouts.of(state);
        const next = trace.arrivals[i + 1];
        if (next !== undefined && next <= deadline) return;
        state.status = 'offline'; // the deadline passed before the next message
        const outage = trace.outages.find((o) => at < o.start && (next === undefined || next >= o.end));
        if (outage !== undefined) {
          if (deadline < outage.end) lags.push(deadline - at);
        } else if (next !== undefined) falseOfflines++;
      });
    }
    out.set(kind, {
      devices: ofKind.length,
      messages,
      falseOfflines,
      detected: lags.length,
      meanLagS: lags.length === 0 ? 0 : lags.reduce((a, b) => a + b, 0) / lags.length / 1000,
      maxLagS: lags.length === 0 ? 0 : Math.max(...lags) / 1000,
    });
  }
  return out;
}

/** Other settings over the same traces: where the defaults (64 intervals, p95, × 3) sit. */
export const ALTERNATIVES: readonly Record<string, string>[] = [
  { LEARNED_TIMEOUT_SAMPLES: '32', LEARNED_TIMEOUT_PERCENTILE: '95', LEARNED_TIMEOUT_FACTOR: '2' },
  { LEARNED_TIMEOUT_SAMPLES: '64', LEARNED_TIMEOUT_PERCENTILE: '95', LEARNED_TIMEOUT_FACTOR: '2' },
  { LEARNED_TIMEOUT_SAMPLES: '32', LEARNED_TIMEOUT_PERCENTILE: '95', LEARNED_TIMEOUT_FACTOR: '3' },
  { LEARNED_TIMEOUT_SAMPLES: '64', LEARNED_TIMEOUT_PERCENTILE: '95', LEARNED_TIMEOUT_FACTOR: '3' },
  { LEARNED_TIMEOUT_SAMPLES: '32', LEARNED_TIMEOUT_PERCENTILE: '100', LEARNED_TIMEOUT_FACTOR: '2' },
  { LEARNED_TIMEOUT_SAMPLES: '64', LEARNED_TIMEOUT_PERCENTILE: '99', LEARNED_TIMEOUT_FACTOR: '2' },
];

const total = (r: Map<ArrivalClass, PolicyResult>, f: (p: PolicyResult) => number) => [...r.values()].reduce((a, p) => a + f(p), 0);

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { devices: { type: 'string', default: '50' }, hours: { type: 'string', default: '6' }, seed: { type: 'string', default: '42' } } });
  const perClass = Number(values.devices);
  const traces = arrivalTraces(perClass, Number(values.hours) * 3_600_000, 30 * 60_000, Number(values.seed));
  const fixed = replay(traces, { OFFLINE_TIMEOUT_S: '60' });
  const learned = replay(traces, { OFFLINE_TIMEOUT_S: '60', LEARNED_TIMEOUTS: 'true' });
  const rows = ['| device class | messages | false offlines: fixed 60 s | learned | detection lag, mean / max s (outages detected): fixed 60 s | learned |', '| --- | ---: | ---: | ---: | ---: | ---: |'];
  const lag = (r: PolicyResult) => `${r.meanLagS.toFixed(1)} / ${r.maxLagS.toFixed(1)} (${r.detected}/${r.devices * 2})`;
  for (const kind of ARRIVAL_CLASSES) {
    const f = fixed.get(kind)!;
    const l = learned.get(kind)!;
    rows.push(`| ${kind} ×${f.devices} | ${f.messages} | ${f.falseOfflines} | ${l.falseOfflines} | ${lag(f)} | ${lag(l)} |`);
  }
  rows.push('', '| samples, percentile, factor | false offlines (all classes) | outages missed | lag regular_10s / lossy_15s / slow_300s, mean s |', '| --- | ---: | ---: | --- |');
  for (const alt of ALTERNATIVES) {
    const r = replay(traces, { OFFLINE_TIMEOUT_S: '60', LEARNED_TIMEOUTS: 'true', ...alt });
    const lags = (['regular_10s', 'lossy_15s', 'slow_300s'] as const).map((k) => r.get(k)!.meanLagS.toFixed(0)).join(' / ');
    rows.push(`| ${alt.LEARNED_TIMEOUT_SAMPLES}, p${alt.LEARNED_TIMEOUT_PERCENTILE}, × ${alt.LEARNED_TIMEOUT_FACTOR} | ${total(r, (p) => p.falseOfflines)} | ${total(r, (p) => p.devices * 2 - p.detected)} | ${lags} |`);
  }
  process.stdout.write(`${rows.join('\n')}\n`);
}
