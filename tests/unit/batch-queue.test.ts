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
