import { refusalOf, type DbFailure } from './db-errors.js';

/**
 * A FIFO of rows cut into batches, written by `write` with at most `maxInFlight` batches at once.
 * Enqueue is O(1): rows go into the open batch, which closes at `batchRows`.
 *
 * Two kinds of failure (see db-errors.ts). An outage sends what is left of the batch back to the
 * front, retried with exponential backoff and jitter: rows are never dropped. A refusal (the
 * database rejects the data) is bisected: each half is written again, left before right so the
 * rows keep their order, down to the single rows refused, which go to `reject` (the dead-letter
 * table) while every other row is stored. k bad rows in n cost about 2·k·log2(n) statements.
 */
export interface BatchQueueOptions<T> {
  readonly batchRows: number;
  readonly maxInFlight: number;
  /**
   * A backlog (more closed batches than free write slots) is written in merged batches of up to this
   * many rows (default: `batchRows`, no merging). Per-statement costs are then shared by more rows:
   * PostgreSQL stored status changes at 17–27k rows/s in batches of 500 and 30–32k in batches of
   * 2,000 (1,000,000 devices, 2026-12-01), so a fleet-wide wave drains faster, while a queue that
   * keeps up still writes small batches soon.
   */
  readonly maxMergedRows?: number;
  write(rows: T[]): Promise<void>;
  /** Keeps a row the database refused; throws (an outage) to have it retried with its batch. */
  reject(row: T, failure: DbFailure): Promise<void>;
  /** Once per batch finished: `rows` stored (refused rows are not counted). */
  onWritten(rows: number, seconds: number): void;
  /** An outage: `rows` of the batch go back to the front to be retried. */
  onFailure(error: Error, attempt: number, rows: number): void;
  onRecovered(afterAttempts: number): void;
}

interface Batch<T> {
  rows: T[];
  /** Sequence number of the batch's first row (rows are numbered as they are enqueued). */
  firstSeq: number;
}

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;

export class BatchQueue<T> {
  private readonly closed: Batch<T>[] = [];
  private open: Batch<T>;
  private readonly inFlight = new Set<Batch<T>>();
  private enqueued = 0;
  private queuedRows = 0;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private waiters: { seq: number; resolve: () => void }[] = [];

  constructor(private readonly opts: BatchQueueOptions<T>) {
    this.open = { rows: [], firstSeq: 0 };
  }

  /** Rows not yet written (queued and in flight). */
  get depth(): number {
    return this.queuedRows;
  }

  /** Rows ever enqueued; a row's sequence number is the count before it. */
  get enqueuedCount(): number {
    return this.enqueued;
  }

  /** Every row with a sequence number below this is written. */
  durableThrough(): number {
    const oldest = this.oldestUnwritten();
    return oldest === Infinity ? this.enqueued : oldest;
  }

  get retrying(): boolean {
    return this.failures > 0;
  }

  push(row: T): void {
    this.open.rows.push(row);
    this.enqueued++;
    this.queuedRows++;
    if (this.open.rows.length >= this.opts.batchRows) {
      this.closeOpen();
      this.pump();
    }
  }

  /** Writes the open batch even if it is not full (called on the flush interval). */
  kick(): void {
    if (this.open.rows.length > 0) this.closeOpen();
    this.pump();
  }

  /** Resolves when every row enqueued before the call is written. */
  flushed(): Promise<void> {
    const seq = this.enqueued;
    this.kick();
    if (this.oldestUnwritten() >= seq) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ seq, resolve }));
  }

  /** Stops retry timers; rows still queued stay unwritten. */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private closeOpen(): void {
    this.closed.push(this.open);
    this.open = { rows: [], firstSeq: this.enqueued };
  }

  private pump(): void {
    if (this.retryTimer !== null || this.stopped) return; // backing off, or closed
    const maxMerged = this.opts.maxMergedRows ?? this.opts.batchRows;
    while (this.inFlight.size < this.opts.maxInFlight && this.closed.length > 0) {
      const batch = this.closed.shift()!;
      // Merge only what the other free slots would not take at once: a queue that keeps up keeps its parallelism.
      const otherFreeSlots = this.opts.maxInFlight - this.inFlight.size - 1;
      while (this.closed.length > otherFreeSlots && batch.rows.length + this.closed[0]!.rows.length <= maxMerged) {
        // Rows keep their order; durability is by each batch's first sequence number, so the merged
        // batch (first seq of the earlier one) is never taken as written before all its rows are.
        const next = this.closed.shift()!;
        for (const row of next.rows) batch.rows.push(row);
      }
      this.inFlight.add(batch);
      void this.writeBatch(batch);
    }
  }

  private async writeBatch(batch: Batch<T>): Promise<void> {
    const started = performance.now();
    let stored = 0;
    let settled = 0;
    try {
      // Ranges still to write, the next one last; they always cover the rows after `settled`.
      const pending: [from: number, to: number][] = [[0, batch.rows.length]];
      while (pending.length > 0) {
        const [from, to] = pending.pop()!;
        try {
          await this.opts.write(from === 0 && to === batch.rows.length ? batch.rows : batch.rows.slice(from, to));
          stored += to - from;
        } catch (error) {
          const refusal = refusalOf(error);
          if (refusal === null) throw error;
          if (to - from > 1) {
            const middle = from + ((to - from) >> 1);
            pending.push([middle, to], [from, middle]);
            continue;
          }
          await this.opts.reject(batch.rows[from]!, refusal);
        }
        settled = to;
      }
    } catch (error) {
      this.inFlight.delete(batch);
      if (settled > 0) {
        // What the bisection settled before the outage is done: count it, release what waits on it.
        this.settle(batch, settled);
        this.opts.onWritten(stored, (performance.now() - started) / 1000);
        this.releaseWaiters();
      }
      this.closed.unshift(batch);
      this.failures++;
      this.opts.onFailure(error as Error, this.failures, batch.rows.length);
      if (this.retryTimer === null && !this.stopped) {
        const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (this.failures - 1));
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.pump();
        }, ceiling / 2 + (Math.random() * ceiling) / 2);
      }
      return;
    }
    this.inFlight.delete(batch);
    this.queuedRows -= batch.rows.length;
    if (this.failures > 0) {
      this.opts.onRecovered(this.failures);
      this.failures = 0;
    }
    this.opts.onWritten(stored, (performance.now() - started) / 1000);
    this.releaseWaiters();
    // Yield to the event loop between batches: PGlite computes on this thread, and back-to-back
    // batches resolved through microtasks alone would starve every socket.
    setImmediate(() => this.pump());
  }

  /** Drops a batch's first `count` rows (stored or dead-lettered) before an outage sends it back. */
  private settle(batch: Batch<T>, count: number): void {
    if (count === 0) return;
    batch.rows = batch.rows.slice(count);
    batch.firstSeq += count;
    this.queuedRows -= count;
  }

  private oldestUnwritten(): number {
    let oldest = this.open.rows.length > 0 ? this.open.firstSeq : Infinity;
    if (this.closed.length > 0) oldest = Math.min(oldest, this.closed[0]!.firstSeq);
    for (const batch of this.inFlight) oldest = Math.min(oldest, batch.firstSeq);
    return oldest;
  }

  private releaseWaiters(): void {
    if (this.waiters.length === 0) return;
    const oldest = this.oldestUnwritten();
    this.waiters = this.waiters.filter((w) => {
      if (oldest < w.seq) return true;
      w.resolve();
      return false;
    });
  }
}
