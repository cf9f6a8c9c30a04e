import type { ScoredHealth } from '../domain/alert.js';
import { DenseRows, RowNumbers } from '../domain/dense-rows.js';
import { healthFrom, packHealth, PACKED_HEALTH_WIDTH, type Weights } from '../domain/health-score.js';

/** A row: when the score was computed, then the score packed as `scoreInto` writes it. */
const WIDTH = 1 + PACKED_HEALTH_WIDTH;

/**
 * The newest stored score of each device the hub has not heard from since it started, packed one
 * row a device (a restored fleet of a million would otherwise hold eight objects a device until each
 * reports). A device's row moves into its insight at its first message or status change.
 */
export class RestoredScores {
  private readonly rowOf = new Map<string, number>();
  private readonly rows = new RowNumbers();
  private readonly table = new DenseRows(WIDTH, (n) => new Float64Array(n));

  /** `weights`: read back with the weights in force (a score stored under others keeps its value). */
  constructor(private readonly weights: Weights) {}

  set(deviceId: string, health: ScoredHealth): void {
    let row = this.rowOf.get(deviceId);
    if (row === undefined) this.rowOf.set(deviceId, (row = this.rows.take()));
    const t = this.table.chunk(row), o = this.table.offset(row);
    t[o] = health.at;
    packHealth(health, t, o + 1);
  }

  get(deviceId: string): ScoredHealth | null {
    const row = this.rowOf.get(deviceId);
    if (row === undefined) return null;
    const t = this.table.chunk(row), o = this.table.offset(row);
    return { ...healthFrom(t, o + 1, this.weights), at: t[o]! };
  }

  score(deviceId: string): number | null {
    const row = this.rowOf.get(deviceId);
    return row === undefined ? null : this.table.chunk(row)[this.table.offset(row) + 1]!;
  }

  /** Copies the device's row (its time, then the packed score) to `out[at…]` and forgets it here; false when there is none. */
  takeInto(deviceId: string, out: Float64Array, at: number): boolean {
    const row = this.rowOf.get(deviceId);
    if (row === undefined) return false;
    const t = this.table.chunk(row), o = this.table.offset(row);
    out.set(t.subarray(o, o + WIDTH), at);
    this.delete(deviceId);
    return true;
  }

  delete(deviceId: string): void {
    const row = this.rowOf.get(deviceId);
    if (row === undefined) return;
    this.rowOf.delete(deviceId);
    this.rows.give(row);
  }

  /** Each device held here with its score. */
  *scores(): Generator<{ deviceId: string; score: number }> {
    for (const [deviceId, row] of this.rowOf) yield { deviceId, score: this.table.chunk(row)[this.table.offset(row) + 1]! };
  }
}
