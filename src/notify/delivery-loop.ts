import { randomUUID } from 'node:crypto';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { VigilDb } from '../storage/database.js';
import { buryRemovedSinks, claimDue, completeDelivery, failDelivery, outboxStats, pruneDead, pruneDeadOver, renameLegacySinks, type ClaimedRow, type OutboxStats } from '../storage/outbox-repository.js';
import type { NotificationPlanner } from './planner.js';
import type { Sink } from './sink.js';

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly maxAgeMs: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

export interface DeliveryOptions {
  readonly db: VigilDb;
  readonly sinks: readonly Sink[];
  readonly planner: NotificationPlanner;
  /** Names this instance in claims (a fresh suffix per process, so a restarted one never finishes an old claim). */
  readonly instance: string;
  readonly pollMs: number;
  /** Rows claimed and delivered at once (NOTIFY_CONCURRENCY). */
  readonly concurrency: number;
  readonly requestTimeoutMs: number;
  readonly maxRows: number;
  readonly retry: RetryPolicy;
  /**
   * NOTIFY_REMOVED_SINK_GRACE_S: pending rows of a sink this instance does not have (its URL left the
   * lists) wait this long after the loop starts — for the instances of a rolling change that still
   * have it, or for the URL to come back — then go dead as `sink_removed`. Never sent elsewhere.
   */
  readonly removedSinkGraceMs: number;
  /** Names by position (`webhook-1`) of rows stored before sinks were named by URL → the sink at that position now. */
  readonly legacyNames: ReadonlyMap<string, string>;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly faults: Faults;
}

/** Claim rounds per tick at most: a backlog drains at up to this many × NOTIFY_CONCURRENCY rows per poll. */
const ROUNDS_PER_TICK = 20;
const PRUNE_EVERY_MS = 60 * 60_000;

/** backoffMs's jitter: each wait is between these shares of its nominal length. */
const JITTER_LOW = 0.8;
const JITTER_SPAN = 0.4;

const nominalBackoffMs = (attempt: number, baseMs: number, maxMs: number) => Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 40));

/**
 * The n-th failed attempt waits baseMs · 2^(n-1), capped at maxMs, ±20 % jitter (so instances and
 * rows that failed together do not retry in lockstep).
 */
export function backoffMs(attempt: number, retry: RetryPolicy, random: () => number = Math.random): number {
  return Math.round(nominalBackoffMs(attempt, retry.baseMs, retry.maxMs) * (JITTER_LOW + JITTER_SPAN * random()));
}

/**
 * NOTIFY_MAX_ATTEMPTS when it is not set: one more than the attempts that can start within
 * `maxAgeMs` when every wait is at its shortest (jitter −20 %), so an event is given up by its age
 * (NOTIFY_MAX_AGE_S), never by running out of attempts first. With the defaults (1 s doubling to
 * 300 s, one day) 369; at the nominal waits about 296 attempts happen in the day.
 */
export function attemptsWithin(maxAgeMs: number, baseMs: number, maxMs: number): number {
  let startedAtMs = 0;
  let attempt = 1;
  // The doubling waits one by one (at most ~40 before the cap), then the capped ones at once.
  while (nominalBackoffMs(attempt, baseMs, maxMs) < maxMs) {
    const next = startedAtMs + JITTER_LOW * nominalBackoffMs(attempt, baseMs, maxMs);
    if (next >= maxAgeMs) return attempt + 1;
    startedAtMs = next;
    attempt++;
  }
  const shortestCapped = JITTER_LOW * maxMs;
  // Attempts still starting before maxAgeMs after `attempt`, each a capped wait later.
  const more = Math.max(0, Math.ceil((maxAgeMs - startedAtMs) / shortestCapped) - 1);
  return attempt + more + 1;
}

export type GiveUpReason = 'not retryable' | 'NOTIFY_MAX_AGE_S reached' | 'NOTIFY_MAX_ATTEMPTS reached';

/** Whether a failed attempt (the `attempts`-th, of a row `ageMs` old) is the last: why, or null to retry. */
export function giveUpReason(attempts: number, ageMs: number, retryable: boolean, retry: RetryPolicy): GiveUpReason | null {
  if (!retryable) return 'not retryable';
  if (ageMs >= retry.maxAgeMs) return 'NOTIFY_MAX_AGE_S reached';
  if (attempts >= retry.maxAttempts) return 'NOTIFY_MAX_ATTEMPTS reached';
  return null;
}

/** The retry settings: NOTIFY_MAX_ATTEMPTS as set, else derived so that NOTIFY_MAX_AGE_S governs. */
export function retryPolicyOf(config: { NOTIFY_MAX_ATTEMPTS?: number | undefined; NOTIFY_MAX_AGE_S: number; NOTIFY_RETRY_BASE_MS: number; NOTIFY_RETRY_MAX_MS: number }): RetryPolicy {
  const maxAgeMs = config.NOTIFY_MAX_AGE_S * 1000;
  return {
    maxAttempts: config.NOTIFY_MAX_ATTEMPTS ?? attemptsWithin(maxAgeMs, config.NOTIFY_RETRY_BASE_MS, config.NOTIFY_RETRY_MAX_MS),
    maxAgeMs,
    baseMs: config.NOTIFY_RETRY_BASE_MS,
    maxMs: config.NOTIFY_RETRY_MAX_MS,
  };
}

/**
 * Delivers the outbox, off the hot path: a timer tick (inside the `notifications` error boundary)
 * claims due rows with a lease (storage/outbox-repository.ts), posts each to its sink, then deletes it or schedules
 * its retry. Any instance may run it; the claim makes each row one instance's at a time, and the
 * lease outlasts the request timeout, so a live claimant is never doubled. A claimant that dies
 * mid-request leaves its rows to the next claim once the lease ends: at least once, never lost.
 */
export class DeliveryLoop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly sinks: Map<string, Sink>;
  private readonly owner: string;
  private readonly leaseMs: number;
  private lastPrune = 0;
  private stopped = false;
  private startedAt = 0;
  /** Removed sinks already logged (once each). */
  private readonly noticedRemoved = new Set<string>();

  constructor(private readonly opts: DeliveryOptions) {
    this.sinks = new Map(opts.sinks.map((s) => [s.name, s]));
    this.owner = `${opts.instance}:${randomUUID().slice(0, 8)}`;
    this.leaseMs = opts.requestTimeoutMs + 30_000;
  }

  async start(): Promise<void> {
    this.startedAt = Date.now();
    await this.renameLegacy();
    const tick = this.opts.faults.guard('notifications', () => this.tick());
    this.timer = setInterval(tick, this.opts.pollMs);
    this.timer.unref();
    tick();
  }

  /** Stops claiming; waits for deliveries in flight (each bounded by the request timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One poll; overlapping ticks are skipped (a slow one is still delivering). */
  tick(): Promise<void> {
    if (this.running !== null) return this.running;
    this.running = this.poll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async poll(): Promise<void> {
    const stats = await this.readStats();
    await this.removedSinks(stats);
    const names = [...this.sinks.keys()];
    for (let round = 0; round < ROUNDS_PER_TICK && !this.stopped; round++) {
      const claimed = await claimDue(this.opts.db, this.owner, this.opts.concurrency, this.leaseMs, names);
      if (claimed.length === 0) break;
      // Settled, not raced: every claimed row's outcome is recorded before the next round or stop.
      const results = await Promise.allSettled(claimed.map((row) => this.deliver(row)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    }
    if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = Date.now();
      await pruneDead(this.opts.db);
    }
  }

  private async deliver(row: ClaimedRow): Promise<void> {
    const { metrics, retry, db, log } = this.opts;
    const sink = this.sinks.get(row.sink);
    // claimDue takes only this instance's sinks' rows: a row is never delivered to another receiver.
    if (sink === undefined) throw new Error(`claimed an outbox row of sink ${row.sink}, which this instance does not have`);
    const outcome = await sink.deliver(row.event);
    if (outcome.ok) {
      await completeDelivery(db, row.seq, this.owner);
      metrics.notifications.inc({ sink: row.sink, outcome: 'delivered' });
      return;
    }
    const reason = giveUpReason(row.attempts, Date.now() - row.createdAt, outcome.retry, retry);
    const dead = reason !== null;
    const delayMs = dead ? 0 : backoffMs(row.attempts, retry);
    await failDelivery(db, row.seq, this.owner, outcome.error, dead, delayMs);
    metrics.notifications.inc({ sink: row.sink, outcome: dead ? 'dead' : 'retried' });
    const context = { sink: row.sink, target: sink.target, eventId: row.event.id, type: row.event.type, attempts: row.attempts, err: outcome.error };
    // The first failure and the end are logged; the retries between are counted only.
    if (dead) log.error({ ...context, reason }, 'notification given up (dead in notification_outbox)');
    else if (row.attempts === 1) log.warn({ ...context, retryInMs: delayMs }, 'notification delivery failed; retrying with backoff');
  }

  /**
   * Rows stored under names by position (hubs before sinkId; also written by such an instance still
   * running in a rolling upgrade): renamed to the sink at that position now. Run at start and
   * whenever the counts show such a name.
   */
  private async renameLegacy(): Promise<void> {
    if (this.opts.legacyNames.size === 0) return;
    const renamed = await renameLegacySinks(this.opts.db, this.opts.legacyNames);
    if (renamed > 0) {
      this.opts.log.warn(
        { rows: renamed, names: Object.fromEntries(this.opts.legacyNames) },
        'outbox rows named by list position (webhook-N, alertmanager-N: before sinks were named by URL) taken as the sinks now at those positions (docs/notifications.md#sinks)',
      );
    }
  }

  /** Pending rows of sinks this instance does not have: logged once, left pending for the grace, then dead (sink_removed). */
  private async removedSinks(stats: readonly OutboxStats[]): Promise<void> {
    const { log, metrics, legacyNames, removedSinkGraceMs, db } = this.opts;
    if (stats.some((s) => legacyNames.has(s.sink))) await this.renameLegacy();
    const removed = stats.filter((s) => s.pending > 0 && !this.sinks.has(s.sink) && !legacyNames.has(s.sink));
    if (removed.length === 0) return;
    const leftMs = removedSinkGraceMs - (Date.now() - this.startedAt);
    for (const s of removed) {
      if (this.noticedRemoved.has(s.sink)) continue;
      this.noticedRemoved.add(s.sink);
      log.warn(
        { sink: s.sink, pending: s.pending, deadInS: Math.max(0, Math.ceil(leftMs / 1000)) },
        'outbox rows of a sink this instance does not have (its URL is no longer configured): sent to no other receiver, kept pending for NOTIFY_REMOVED_SINK_GRACE_S, then dead (sink_removed)',
      );
    }
    if (leftMs > 0) return;
    const buried = await buryRemovedSinks(db, [...this.sinks.keys()]);
    for (const [sink, rows] of buried) {
      metrics.notifications.inc({ sink, outcome: 'sink_removed' }, rows);
      log.warn({ sink, rows }, 'outbox rows of a removed sink given up (dead, last_error sink_removed; GET /admin/notifications)');
    }
  }

  private async readStats(): Promise<OutboxStats[]> {
    const { metrics, planner, maxRows, log } = this.opts;
    const stats = await outboxStats(this.opts.db);
    let pending = 0;
    let dead = 0;
    for (const s of stats) dead += s.dead;
    for (const name of this.sinks.keys()) {
      const s = stats.find((x) => x.sink === name);
      metrics.notificationOutboxDepth.set({ sink: name }, s?.pending ?? 0);
      metrics.notificationOutboxDead.set({ sink: name }, s?.dead ?? 0);
      metrics.notificationOldestPending.set({ sink: name }, s?.oldestPendingS ?? 0);
      pending += s?.pending ?? 0;
    }
    const full = pending >= maxRows;
    if (full !== planner.full) {
      if (full) log.error({ pending, maxRows }, 'notification outbox full (NOTIFY_OUTBOX_MAX_ROWS): new events are dropped and counted until it drains');
      else log.info({ pending }, 'notification outbox below NOTIFY_OUTBOX_MAX_ROWS again: events are queued again');
      planner.full = full;
    }
    // Dead rows are bounded like pending ones (NOTIFY_OUTBOX_MAX_ROWS), the oldest pruned and counted.
    if (dead > maxRows) {
      for (const [sink, rows] of await pruneDeadOver(this.opts.db, maxRows)) metrics.notifications.inc({ sink, outcome: 'pruned' }, rows);
    }
    return stats;
  }
}
