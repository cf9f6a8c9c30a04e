/** The fleet's counts by status at one moment. */
export interface FleetCounts {
  readonly online: number;
  readonly offline: number;
  readonly unknown: number;
}

/** What GET /fleet/history answers: columns, oldest first (time in unix seconds). */
export interface FleetHistoryColumns {
  readonly time_s: number[];
  readonly online: number[];
  readonly offline: number[];
  readonly unknown: number[];
}

/** 24 h of 10 s samples: the ring's size whatever the interval (a shorter interval keeps less time). */
export const FLEET_HISTORY_SAMPLES = 8640;

/**
 * Online, offline and unknown counts sampled every `intervalMs` into a fixed ring of
 * FLEET_HISTORY_SAMPLES (24 h at the default 10 s), in memory, so the dashboard's "online and
 * offline over time" starts with the past day instead of the moment the page opened. Each sample
 * is three numbers read from counts kept as devices change (the registry's totals: no scan); the
 * ring is four typed arrays, about 200 KB, allocated once.
 */
export class FleetHistory {
  private readonly times: Float64Array;
  private readonly counts: [Uint32Array, Uint32Array, Uint32Array];
  private next = 0;
  private size = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly read: () => FleetCounts,
    readonly intervalMs: number,
    readonly capacity: number = FLEET_HISTORY_SAMPLES,
    private readonly now: () => number = Date.now,
  ) {
    this.times = new Float64Array(capacity);
    this.counts = [new Uint32Array(capacity), new Uint32Array(capacity), new Uint32Array(capacity)];
  }

  /** Samples now and then every interval, until stop(). */
  start(): void {
    if (this.timer !== null) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  sample(): void {
    const c = this.read();
    const i = this.next;
    this.times[i] = this.now();
    this.counts[0][i] = c.online;
    this.counts[1][i] = c.offline;
    this.counts[2][i] = c.unknown;
    this.next = (i + 1) % this.capacity;
    this.size = Math.min(this.capacity, this.size + 1);
  }

  /** The samples taken at or after `sinceMs` (all kept when null), oldest first. */
  columns(sinceMs: number | null = null): FleetHistoryColumns {
    const out: FleetHistoryColumns = { time_s: [], online: [], offline: [], unknown: [] };
    const first = (this.next - this.size + this.capacity) % this.capacity;
    for (let k = 0; k < this.size; k++) {
      const i = (first + k) % this.capacity;
      const t = this.times[i]!;
      if (sinceMs !== null && t < sinceMs) continue;
      out.time_s.push(Math.round(t) / 1000);
      out.online.push(this.counts[0][i]!);
      out.offline.push(this.counts[1][i]!);
      out.unknown.push(this.counts[2][i]!);
    }
    return out;
  }
}
