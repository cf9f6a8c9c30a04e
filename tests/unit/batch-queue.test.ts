import { DrizzleQueryError } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchQueue } from '../../src/storage/batch-queue.js';
import type { DbFailure } from '../../src/storage/db-errors.js';

/** A driver error as Drizzle hands it over: the SQLSTATE on the cause, the SQL and parameters on the wrapper. */
const dbError = (code: string, message: string) =>
  new DrizzleQueryError('insert into telemetry … $1', ['secret-parameter'], Object.assign(new Error(message), { code }));

/** A fake inserter over real queue logic: refuses any batch holding a bad row, and fails whole during an outage. */
function fakeDatabase(bad: ReadonlySet<number>, outageAtCall = 0) {
  const stored: number[] = [];
  const calls: number[][] = [];
  const dead: { row: number; failure: DbFailure }[] = [];
  const failures: { err: Error; rows: number }[] = [];
  let outageWrites = 0;
  let outageRejects = 0;
  const written: number[] = [];
  const queue = new BatchQueue<number>({
    batchRows: 8,
    maxInFlight: 1,
    async write(rows) {
      calls.push([...rows]);
      if (outageWrites > 0 || calls.length === outageAtCall) {
        outageWrites--;
        throw dbError('57P01', 'terminating connection due to administrator command');
      }
      if (rows.some((r) => bad.has(r))) throw dbError('22P05', 'unsupported Unicode escape sequence');
      stored.push(...rows);
    },
    async reject(row, failure) {
      if (outageRejects > 0) {
        outageRejects--;
        throw dbError('CONNECTION_CLOSED', 'write CONNECTION_CLOSED');
      }
      dead.push({ row, failure });
    },
    onWritten: (rows) => void written.push(rows),
    onFailure: (err, _attempt, rows) => void failures.push({ err, rows }),
    onRecovered: () => undefined,
  });
  return {
    queue,
    stored,
    calls,
    dead,
    failures,
    written,
    outage(writes: number, rejects = 0) {
      outageWrites = writes;
      outageRejects = rejects;
    },
  };
}

const fill = (queue: BatchQueue<number>, n: number) => {
  for (let i = 0; i < n; i++) queue.push(i);
};

describe('writer batch queue: outage or refusal', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('bisects a refused batch: the refused rows are dead-lettered once, every other row stored in order', async () => {
    const db = fakeDatabase(new Set([2, 5]));
    fill(db.queue, 8);
    await vi.runAllTimersAsync();
    expect(db.stored).toEqual([0, 1, 3, 4, 6, 7]);
    expect(db.dead.map((d) => d.row)).toEqual([2, 5]);
    expect(db.dead[0]!.failure).toEqual({ sqlstate: '22P05', message: 'unsupported Unicode escape sequence' });
    expect(db.failures).toEqual([]);
    expect(db.queue.retrying).toBe(false);
    expect(db.queue.durableThrough()).toBe(8);
    expect(db.queue.depth).toBe(0);
    expect(db.written).toEqual([6]);
    // 1 whole + 2 halves + 4 quarters + 4 single rows: about 2·k·log2(n).
    expect(db.calls.length).toBe(11);
  });

  it('a batch of one refused row is dead-lettered and the queue moves on', async () => {
    const db = fakeDatabase(new Set([0]));
    db.queue.push(0);
    db.queue.kick();
    await vi.runAllTimersAsync();
    db.queue.push(1);
    db.queue.kick();
    await vi.runAllTimersAsync();
    expect(db.dead.map((d) => d.row)).toEqual([0]);
    expect(db.stored).toEqual([1]);
    expect(db.queue.durableThrough()).toBe(2);
  });

  it('an outage is retried whole with backoff and holds durability; nothing is dead-lettered', async () => {
    const db = fakeDatabase(new Set());
    db.outage(3);
    fill(db.queue, 8);
    await vi.advanceTimersByTimeAsync(0);
    expect(db.queue.retrying).toBe(true);
    expect(db.queue.durableThrough()).toBe(0);
    expect(db.failures[0]!.rows).toBe(8);
    await vi.runAllTimersAsync();
    expect(db.stored).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(db.calls.every((c) => c.length === 8)).toBe(true);
    expect(db.failures).toHaveLength(3);
    expect(db.dead).toEqual([]);
    expect(db.queue.durableThrough()).toBe(8);
    expect(db.queue.retrying).toBe(false);
  });

  it('an outage in the middle of a bisection keeps what was settled and retries only the rest', async () => {
    // The whole batch is refused, then [0,4) and [0,2) too; [0,1) is stored, [1,2) refused and
    // dead-lettered; the outage hits the sixth statement, [2,4).
    const db = fakeDatabase(new Set([1]), 6);
    fill(db.queue, 8);
    await vi.runAllTimersAsync();
    expect(db.dead.map((d) => d.row)).toEqual([1]);
    expect(db.stored).toEqual([0, 2, 3, 4, 5, 6, 7]);
    expect(db.failures).toHaveLength(1);
    expect(db.failures[0]!.rows).toBe(6);
    expect(db.calls.at(-1)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(db.queue.durableThrough()).toBe(8);
  });

  it('an outage while dead-lettering retries the row later and dead-letters it once', async () => {
    const db = fakeDatabase(new Set([3]));
    db.outage(0, 1);
    fill(db.queue, 8);
    await vi.advanceTimersByTimeAsync(0);
    expect(db.queue.retrying).toBe(true);
    expect(db.queue.durableThrough()).toBe(3);
    await vi.runAllTimersAsync();
    expect(db.dead.map((d) => d.row)).toEqual([3]);
    expect(db.stored).toEqual([0, 1, 2, 4, 5, 6, 7]);
    expect(db.queue.durableThrough()).toBe(8);
  });

  it('classifies by SQLSTATE class: 22, 23 and 54 are refusals; connection errors, 40001 and 57P01 are outages', async () => {
    const { refusalOf, describeDbFailure } = await import('../../src/storage/db-errors.js');
    for (const code of ['22P05', '22021', '22P02', '22003', '23505', '23502', '54000']) expect(refusalOf(dbError(code, 'x'))).not.toBeNull();
    for (const code of ['40001', '40P01', '57P01', '53300', '08006', '55000', 'ECONNREFUSED', 'CONNECTION_CLOSED', 'CONNECT_TIMEOUT']) {
      expect(refusalOf(dbError(code, 'x'))).toBeNull();
    }
    expect(refusalOf(new Error('socket hang up'))).toBeNull();
    const described = describeDbFailure(dbError('22P05', 'unsupported Unicode escape sequence'));
    expect(JSON.stringify(described)).not.toContain('secret-parameter');
    expect(describeDbFailure(new DrizzleQueryError('select $1', ['secret-parameter'], undefined as unknown as Error)).message).toBe('query failed');
  });
});

/** A writer whose every call waits until the test settles it: batches in flight can be seen and finished in any order. */
function heldDatabase(batchRows = 4, maxInFlight = 2) {
  const calls: { rows: number[]; at: number; settle: (error?: Error) => void }[] = [];
  const stored: number[] = [];
  const events: string[] = [];
  const queue = new BatchQueue<number>({
    batchRows,
    maxInFlight,
    write: (rows) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ rows: [...rows], at: Date.now(), settle: (error) => (error ? reject(error) : (stored.push(...rows), resolve())) });
      }),
    reject: async () => undefined,
    onWritten: (rows) => void events.push(`written ${rows}`),
    onFailure: (_err, attempt, rows) => void events.push(`failure ${attempt} (${rows} rows)`),
    onRecovered: (after) => void events.push(`recovered after ${after}`),
  });
  const open = () => calls.filter((c) => !settled.has(c));
  const settled = new Set<(typeof calls)[number]>();
  const finish = async (index: number, error?: Error) => {
    const call = calls[index]!;
    settled.add(call);
    call.settle(error);
    await vi.advanceTimersByTimeAsync(0);
  };
  return { queue, calls, stored, events, open, finish };
}

describe('writer batch queue: batches in flight, order and retries', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  it('closes a batch at batchRows; the open one waits for kick; kick with nothing open writes nothing', async () => {
    const db = heldDatabase(4, 2);
    db.queue.kick();
    fill(db.queue, 6);
    expect(db.calls.map((c) => c.rows)).toEqual([[0, 1, 2, 3]]);
    db.queue.kick();
    expect(db.calls.map((c) => c.rows)).toEqual([
      [0, 1, 2, 3],
      [4, 5],
    ]);
    expect(db.queue.depth).toBe(6);
    expect(db.queue.enqueuedCount).toBe(6);
  });

  it('writes at most maxInFlight batches at once; the next starts when one finishes', async () => {
    const db = heldDatabase(4, 2);
    fill(db.queue, 16);
    expect(db.open().map((c) => c.rows[0])).toEqual([0, 4]);
    await db.finish(0);
    expect(db.open().map((c) => c.rows[0])).toEqual([4, 8]);
    await db.finish(1);
    await db.finish(2);
    expect(db.open().map((c) => c.rows[0])).toEqual([12]);
    await db.finish(3);
    expect(db.stored).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(db.queue.depth).toBe(0);
    expect(db.events).toEqual(['written 4', 'written 4', 'written 4', 'written 4']);
  });

  it('durableThrough and flushed follow the oldest unwritten row, not the last batch finished', async () => {
    const db = heldDatabase(4, 2);
    fill(db.queue, 8);
    let flushed = false;
    void db.queue.flushed().then(() => (flushed = true));
    await db.finish(1); // rows 4..7 first
    expect(db.queue.durableThrough()).toBe(0);
    expect(flushed).toBe(false);
    db.queue.push(8); // open, unwritten: durability stays behind it once the rest is in
    await db.finish(0);
    expect(db.queue.durableThrough()).toBe(8);
    expect(flushed).toBe(true);
    expect(db.stored).toEqual([4, 5, 6, 7, 0, 1, 2, 3]);
    let flushedAgain = false;
    void db.queue.flushed().then(() => (flushedAgain = true)); // writes the open batch
    expect(db.calls.at(-1)!.rows).toEqual([8]);
    await vi.advanceTimersByTimeAsync(0);
    expect(flushedAgain).toBe(false);
    await db.finish(2);
    expect(flushedAgain).toBe(true);
    expect(db.queue.durableThrough()).toBe(9);
  });

  it('retries through consecutive outages with growing, capped backoff; rows pushed meanwhile wait and keep their order', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999999); // the top of each jitter range
    const db = heldDatabase(4, 1);
    const outage = new Error('connection refused');
    fill(db.queue, 4);
    const gaps: number[] = [];
    for (let attempt = 1; attempt <= 8; attempt++) {
      const failedAt = Date.now();
      await db.finish(db.calls.length - 1, outage);
      db.queue.push(100 + attempt); // during the backoff: queued, nothing written early
      const calls = db.calls.length;
      await vi.advanceTimersByTimeAsync(6000);
      expect(db.calls).toHaveLength(calls + 1);
      gaps.push(db.calls.at(-1)!.at - failedAt);
    }
    // 100 ms doubling, capped at 5 s (the fake clock fires a timer at a whole ms).
    expect(gaps.map((g) => Math.round(g / 100) * 100)).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    expect(db.queue.retrying).toBe(true);
    expect(db.events.filter((e) => e.startsWith('failure')).at(-1)).toBe('failure 8 (4 rows)');
    await db.finish(db.calls.length - 1);
    expect(db.events.slice(-2)).toEqual(['recovered after 8', 'written 4']);
    expect(db.queue.retrying).toBe(false);
    db.queue.kick();
    await vi.advanceTimersByTimeAsync(0);
    while (db.open().length > 0) await db.finish(db.calls.indexOf(db.open()[0]!));
    expect(db.stored).toEqual([0, 1, 2, 3, 101, 102, 103, 104, 105, 106, 107, 108]);
    expect(db.queue.durableThrough()).toBe(12);
  });

  it('the shortest backoff is half its ceiling (jitter)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const db = heldDatabase(4, 1);
    fill(db.queue, 4);
    await db.finish(0, new Error('connection refused'));
    await vi.advanceTimersByTimeAsync(49);
    expect(db.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(db.calls).toHaveLength(2);
  });

  it('stop ends the retries: queued rows stay unwritten and counted in depth', async () => {
    const db = heldDatabase(4, 1);
    fill(db.queue, 4);
    await db.finish(0, new Error('connection refused'));
    db.queue.stop();
    db.queue.push(4);
    db.queue.kick();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(db.calls).toHaveLength(1);
    expect(db.queue.depth).toBe(5);
    expect(db.queue.durableThrough()).toBe(0);
  });

  it('a refused batch in flight beside another: both settle, rows dead-lettered once, durability past both', async () => {
    const db = fakeDatabase(new Set([9]));
    fill(db.queue, 16);
    await vi.runAllTimersAsync();
    expect(db.dead.map((d) => d.row)).toEqual([9]);
    expect(db.stored).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]);
    expect(db.written).toEqual([8, 7]);
    expect(db.queue.durableThrough()).toBe(16);
    expect(db.queue.retrying).toBe(false);
  });
});

describe('writer batch queue: a backlog is written in merged batches (#21: a fleet-wide wave of status changes)', () => {
  /** A queue whose writes finish only when the test says so. */
  function gatedQueue(maxInFlight: number) {
    const calls: number[][] = [];
    const gates: (() => void)[] = [];
    const queue = new BatchQueue<number>({
      batchRows: 10,
      maxMergedRows: 40,
      maxInFlight,
      write(rows) {
        calls.push([...rows]);
        return new Promise<void>((resolve) => gates.push(resolve));
      },
      reject: async () => undefined,
      onWritten: () => undefined,
      onFailure: () => undefined,
      onRecovered: () => undefined,
    });
    const release = async () => {
      gates.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
    };
    return { queue, calls, release };
  }

  it('with one batch in flight, the batches that queued behind it go as one of up to maxMergedRows, in order', async () => {
    const { queue, calls, release } = gatedQueue(1);
    fill(queue, 10); // closes batch 1, written at once
    for (let i = 10; i < 95; i++) queue.push(i); // eight more batches close behind it, and 5 rows stay open
    expect(calls).toEqual([Array.from({ length: 10 }, (_, i) => i)]);
    const mark = queue.enqueuedCount;
    await release();
    expect(calls[1]).toEqual(Array.from({ length: 40 }, (_, i) => 10 + i)); // four batches merged
    expect(queue.durableThrough()).toBe(10); // the merged rows are not written yet
    await release();
    expect(calls[2]).toEqual(Array.from({ length: 40 }, (_, i) => 50 + i));
    queue.kick();
    await release();
    expect(calls[3]).toEqual([90, 91, 92, 93, 94]);
    await release();
    expect(queue.durableThrough()).toBe(mark);
    expect(queue.depth).toBe(0);
    expect(calls.flat()).toEqual(Array.from({ length: 95 }, (_, i) => i));
  });

  it('a queue that keeps up writes each batch on its own, and free slots are filled before merging', async () => {
    const { queue, calls, release } = gatedQueue(3);
    for (let i = 0; i < 30; i++) queue.push(i); // three batches, three free slots: no merging
    expect(calls.map((c) => c.length)).toEqual([10, 10, 10]);
    for (let i = 30; i < 100; i++) queue.push(i); // seven batches wait
    await release(); // one slot frees: it takes what the other (busy) slots cannot, up to 40 rows
    expect(calls[3]).toEqual(Array.from({ length: 40 }, (_, i) => 30 + i));
    await release();
    await release();
    expect(calls.slice(4).map((c) => c.length)).toEqual([30]);
    await release();
    await release();
    expect(calls.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});
