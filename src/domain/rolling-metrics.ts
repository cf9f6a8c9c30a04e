import type { Telemetry } from './telemetry.js';

const RECENT_SAMPLES = 10;
const HOURS = 24;
/** Per hour bucket: count, response sum, response max, error sum, battery sum, rssi sum, online ms, samples with each field. */
const F = { count: 0, respSum: 1, respMax: 2, errSum: 3, batSum: 4, rssiSum: 5, onlineMs: 6, respN: 7, errN: 8, batN: 9, rssiN: 10 } as const;
const FIELDS = 11;
const HOUR_MS = 3_600_000;

export interface MetricsSummary {
  readonly count: number;
  readonly avgResponseTimeMs: number | null;
  readonly maxResponseTimeMs: number | null;
  readonly avgErrorRate: number | null;
  readonly avgBattery: number | null;
  readonly avgRssi: number | null;
}

/**
 * A device's rolling metrics in constant memory: the last 10 response times (the degradation rule's
 * window) and the last reading of each kind for "recent", and 24 hourly buckets for the last 24 h
 * (sums, maxima, counts and online time). O(1) per message; no arrays that grow.
 */
export class RollingMetrics {
  private readonly recentResponse = new Float64Array(RECENT_SAMPLES);
  private recentCount = 0;
  private recentCursor = 0;
  // Float32: ~1 KB per device; hourly sums stay well inside its exact range.
  private readonly buckets = new Float32Array(HOURS * FIELDS);
  /** The hour (epoch hours) of the newest bucket. */
  private currentHour = -1;
  lastErrorRate: number | null = null;
  lastBattery: number | null = null;
  lastRssi: number | null = null;
  lastResponseTimeMs: number | null = null;
  /** Bounded total for the summary (the 24 h figures come from the buckets). */
  total = 0;

  add(t: Telemetry): void {
    const base = this.bucketFor(t.receivedAt);
    const b = this.buckets;
    b[base + F.count]!++;
    this.total++;
    if (t.responseTimeMs !== null) {
      this.recentResponse[this.recentCursor] = t.responseTimeMs;
      this.recentCursor = (this.recentCursor + 1) % RECENT_SAMPLES;
      if (this.recentCount < RECENT_SAMPLES) this.recentCount++;
      b[base + F.respSum]! += t.responseTimeMs;
      b[base + F.respN]!++;
      if (t.responseTimeMs > b[base + F.respMax]!) b[base + F.respMax] = t.responseTimeMs;
      this.lastResponseTimeMs = t.responseTimeMs;
    }
    if (t.errorRate !== null) {
      b[base + F.errSum]! += t.errorRate;
      b[base + F.errN]!++;
      this.lastErrorRate = t.errorRate;
    }
    if (t.batteryLevel !== null) {
      b[base + F.batSum]! += t.batteryLevel;
      b[base + F.batN]!++;
      this.lastBattery = t.batteryLevel;
    }
    if (t.rssi !== null) {
      b[base + F.rssiSum]! += t.rssi;
      b[base + F.rssiN]!++;
      this.lastRssi = t.rssi;
    }
  }

  /** Online time is added as it passes (at each message, transition and sweep). */
  addOnlineTime(from: number, to: number): void {
    let start = from;
    while (start < to) {
      const hourEnd = (Math.floor(start / HOUR_MS) + 1) * HOUR_MS;
      const end = Math.min(to, hourEnd);
      if (to - start <= HOURS * HOUR_MS) this.buckets[this.bucketFor(start) + F.onlineMs]! += end - start;
      start = end;
    }
  }

  /** Mean of the last 10 response times and how many there are (the degradation rule). */
  recentResponseMean(): { mean: number | null; samples: number } {
    if (this.recentCount === 0) return { mean: null, samples: 0 };
    let sum = 0;
    for (let i = 0; i < this.recentCount; i++) sum += this.recentResponse[i]!;
    return { mean: sum / this.recentCount, samples: this.recentCount };
  }

  /** Share of the last 24 h the device was online (of the time since it was first seen, up to 24 h). */
  uptime24h(now: number, firstSeen: number): number | null {
    this.bucketFor(now);
    let online = 0;
    for (let h = 0; h < HOURS; h++) online += this.buckets[h * FIELDS + F.onlineMs]!;
    const span = Math.min(HOURS * HOUR_MS, now - firstSeen);
    return span > 0 ? Math.min(1, online / span) : null;
  }

  summary24h(now: number): MetricsSummary {
    this.bucketFor(now);
    let count = 0, respSum = 0, respN = 0, respMax = -Infinity, errSum = 0, errN = 0, batSum = 0, batN = 0, rssiSum = 0, rssiN = 0;
    for (let h = 0; h < HOURS; h++) {
      const o = h * FIELDS;
      const b = this.buckets;
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

  recentSummary(): MetricsSummary {
    const { mean } = this.recentResponseMean();
    let max: number | null = null;
    for (let i = 0; i < this.recentCount; i++) max = Math.max(max ?? -Infinity, this.recentResponse[i]!);
    return {
      count: this.recentCount,
      avgResponseTimeMs: mean,
      maxResponseTimeMs: max,
      avgErrorRate: this.lastErrorRate,
      avgBattery: this.lastBattery,
      avgRssi: this.lastRssi,
    };
  }

  /** Offset of the bucket for `at`, clearing the hours skipped since the last one (ring of 24). */
  private bucketFor(at: number): number {
    const hour = Math.floor(at / HOUR_MS);
    if (hour > this.currentHour) {
      const skipped = Math.min(HOURS, this.currentHour < 0 ? HOURS : hour - this.currentHour);
      for (let k = 1; k <= skipped; k++) {
        const h = (((this.currentHour < 0 ? hour - HOURS : this.currentHour) + k) % HOURS + HOURS) % HOURS;
        this.buckets.fill(0, h * FIELDS, (h + 1) * FIELDS);
      }
      this.currentHour = hour;
    }
    // A reading older than 24 h still lands in its hour's slot only if that slot is within the window.
    const h = Math.max(hour, this.currentHour - HOURS + 1);
    return ((h % HOURS) + HOURS) % HOURS * FIELDS;
  }
}
