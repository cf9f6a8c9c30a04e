import { DenseRows } from './dense-rows.js';
import type { Telemetry } from './telemetry.js';

const RECENT_SAMPLES = 10;
const HOURS = 24;
/** Per hour bucket: count, response sum, response max, error sum, battery sum, rssi sum, online ms, samples with each field. */
const F = { count: 0, respSum: 1, respMax: 2, errSum: 3, batSum: 4, rssiSum: 5, onlineMs: 6, respN: 7, errN: 8, batN: 9, rssiN: 10 } as const;
const FIELDS = 11;
const HOUR_MS = 3_600_000;
/** A row's scalars after its ring of recent response times; NaN stands for "none yet". */
const S = { recentCount: RECENT_SAMPLES, recentCursor: RECENT_SAMPLES + 1, currentHour: RECENT_SAMPLES + 2, lastErrorRate: RECENT_SAMPLES + 3, lastBattery: RECENT_SAMPLES + 4, lastRssi: RECENT_SAMPLES + 5 } as const;
const SCALARS = RECENT_SAMPLES + 6;

export interface MetricsSummary {
  readonly count: number;
  readonly avgResponseTimeMs: number | null;
  readonly maxResponseTimeMs: number | null;
  readonly avgErrorRate: number | null;
  readonly avgBattery: number | null;
  readonly avgRssi: number | null;
}

const orNull = (n: number): number | null => (Number.isNaN(n) ? null : n);

/**
 * Every device's rolling metrics in constant memory, one row a device (dense-rows.ts): the last 10
 * response times (the degradation rule's window) and the last reading of each kind for "recent",
 * and 24 hourly buckets for the last 24 h (sums, maxima, counts and online time). O(1) per message;
 * nothing grows and nothing is allocated per message.
 */
export class RollingMetricsTable {
  private readonly scalars = new DenseRows(SCALARS, (n) => new Float64Array(n));
  // Float32: hourly sums stay well inside its exact range, and it halves the largest part of a row.
  private readonly hours = new DenseRows(HOURS * FIELDS, (n) => new Float32Array(n));

  /** Starts a row afresh (a new device, or a row given back and handed out again). */
  reset(row: number): void {
    this.hours.fill(row, 0);
    const s = this.scalars.chunk(row), o = this.scalars.offset(row);
    s.fill(0, o, o + RECENT_SAMPLES + 2);
    s[o + S.currentHour] = -1;
    s[o + S.lastErrorRate] = s[o + S.lastBattery] = s[o + S.lastRssi] = NaN;
  }

  add(row: number, t: Telemetry): void {
    const b = this.hours.chunk(row);
    const base = this.bucketFor(row, t.receivedAt);
    const s = this.scalars.chunk(row), o = this.scalars.offset(row);
    b[base + F.count]!++;
    if (t.responseTimeMs !== null) {
      const cursor = s[o + S.recentCursor]!;
      s[o + cursor] = t.responseTimeMs;
      s[o + S.recentCursor] = (cursor + 1) % RECENT_SAMPLES;
      if (s[o + S.recentCount]! < RECENT_SAMPLES) s[o + S.recentCount]!++;
      b[base + F.respSum]! += t.responseTimeMs;
      b[base + F.respN]!++;
      if (t.responseTimeMs > b[base + F.respMax]!) b[base + F.respMax] = t.responseTimeMs;
    }
    if (t.errorRate !== null) {
      b[base + F.errSum]! += t.errorRate;
      b[base + F.errN]!++;
      s[o + S.lastErrorRate] = t.errorRate;
    }
    if (t.batteryLevel !== null) {
      b[base + F.batSum]! += t.batteryLevel;
      b[base + F.batN]!++;
      s[o + S.lastBattery] = t.batteryLevel;
    }
    if (t.rssi !== null) {
      b[base + F.rssiSum]! += t.rssi;
      b[base + F.rssiN]!++;
      s[o + S.lastRssi] = t.rssi;
    }
  }

  /** Online time is added as it passes (at each message, transition and sweep). */
  addOnlineTime(row: number, from: number, to: number): void {
    const b = this.hours.chunk(row);
    let start = from;
    while (start < to) {
      const hourEnd = (Math.floor(start / HOUR_MS) + 1) * HOUR_MS;
      const end = Math.min(to, hourEnd);
      if (to - start <= HOURS * HOUR_MS) b[this.bucketFor(row, start) + F.onlineMs]! += end - start;
      start = end;
    }
  }

  /** How many recent response times there are (up to 10). */
  recentSamples(row: number): number {
    return this.scalars.chunk(row)[this.scalars.offset(row) + S.recentCount]!;
  }

  /** Mean of the last 10 response times (the degradation rule), null with none. */
  recentResponseMean(row: number): number | null {
    const s = this.scalars.chunk(row), o = this.scalars.offset(row);
    const n = s[o + S.recentCount]!;
    if (n === 0) return null;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += s[o + i]!;
    return sum / n;
  }

  lastBattery(row: number): number | null {
    return orNull(this.scalars.chunk(row)[this.scalars.offset(row) + S.lastBattery]!);
  }

  lastRssi(row: number): number | null {
    return orNull(this.scalars.chunk(row)[this.scalars.offset(row) + S.lastRssi]!);
  }

  lastErrorRate(row: number): number | null {
    return orNull(this.scalars.chunk(row)[this.scalars.offset(row) + S.lastErrorRate]!);
  }

  /** Share of the last 24 h the device was online (of the time since it was first seen, up to 24 h). */
  uptime24h(row: number, now: number, firstSeen: number): number | null {
    this.bucketFor(row, now);
    const b = this.hours.chunk(row), o = this.hours.offset(row);
    let online = 0;
    for (let h = 0; h < HOURS; h++) online += b[o + h * FIELDS + F.onlineMs]!;
    const span = Math.min(HOURS * HOUR_MS, now - firstSeen);
    return span > 0 ? Math.min(1, online / span) : null;
  }

  summary24h(row: number, now: number): MetricsSummary {
    this.bucketFor(row, now);
    const b = this.hours.chunk(row), base = this.hours.offset(row);
    let count = 0, respSum = 0, respN = 0, respMax = -Infinity, errSum = 0, errN = 0, batSum = 0, batN = 0, rssiSum = 0, rssiN = 0;
    for (let h = 0; h < HOURS; h++) {
      const o = base + h * FIELDS;
      count += b[o + F.count]!;
      respSum += b[o + F.respSum]!;
      respN += b[o + F.respN]!;
      if (b[o + F.respN]! > 0) respMax = Math.max(respMax, b[o + F.respMax]!);
      errSum += b[o + F.errSum]!;
      errN += b[o + F.errN]!;
      batSum += b[o + F.batSum]!;
      batN += b[o + F.batN]!;
      rssiSum += b[o + F.rssiSum]!;
      rssiN += b[o + F.rssiN]!;
    }
    return {
      count,
      avgResponseTimeMs: respN > 0 ? respSum / respN : null,
      maxResponseTimeMs: respN > 0 ? respMax : null,
      avgErrorRate: errN > 0 ? errSum / errN : null,
      avgBattery: batN > 0 ? batSum / batN : null,
      avgRssi: rssiN > 0 ? rssiSum / rssiN : null,
    };
  }

  recentSummary(row: number): MetricsSummary {
    const s = this.scalars.chunk(row), o = this.scalars.offset(row);
    const n = s[o + S.recentCount]!;
    let max: number | null = null;
    for (let i = 0; i < n; i++) max = Math.max(max ?? -Infinity, s[o + i]!);
    return {
      count: n,
      avgResponseTimeMs: this.recentResponseMean(row),
      maxResponseTimeMs: max,
      avgErrorRate: orNull(s[o + S.lastErrorRate]!),
      avgBattery: orNull(s[o + S.lastBattery]!),
      avgRssi: orNull(s[o + S.lastRssi]!),
    };
  }

  /** Offset of the row's bucket for `at`, clearing the hours skipped since the last one (ring of 24). */
  private bucketFor(row: number, at: number): number {
    const s = this.scalars.chunk(row), so = this.scalars.offset(row);
    const b = this.hours.chunk(row), base = this.hours.offset(row);
    const hour = Math.floor(at / HOUR_MS);
    const current = s[so + S.currentHour]!;
    if (hour > current) {
      const skipped = Math.min(HOURS, current < 0 ? HOURS : hour - current);
      for (let k = 1; k <= skipped; k++) {
        const h = (((current < 0 ? hour - HOURS : current) + k) % HOURS + HOURS) % HOURS;
        b.fill(0, base + h * FIELDS, base + (h + 1) * FIELDS);
      }
      s[so + S.currentHour] = hour;
    }
    // A reading older than 24 h still lands in its hour's slot only if that slot is within the window.
    const h = Math.max(hour, s[so + S.currentHour]! - HOURS + 1);
    return base + ((h % HOURS) + HOURS) % HOURS * FIELDS;
  }
}
