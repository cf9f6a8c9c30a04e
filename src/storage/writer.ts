import type { StatusChange } from '../domain/device-status.js';
import type { Telemetry } from '../domain/telemetry.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { BatchQueue } from './batch-queue.js';
import { insertHealthScores, insertStatusChanges, insertTelemetry, upsertAlerts, upsertCommands, upsertDevicesSeen, type HealthRow } from './batch-inserts.js';
import type { Database } from './database.js';
import { describeDbFailure, refusalOf } from './db-errors.js';
import { insertDeadLetter } from './dead-letter-repository.js';
import { writeWithOutbox, type OutboxRow, type WithNotifications } from './outbox-repository.js';
import type { EventSink } from '../domain/event-sink.js';
import type { Command } from '../domain/command.js';
import type { Alert, AlertTransition } from '../domain/alert.js';

/**
 * Which outbox rows announce an alert transition or a status change (implemented by
 * notify/planner.ts): the writer stores them in the same transaction as the row they announce.
 */
export interface OutboxPlanner {
  /** Status changes become events too (ALERT_WEBHOOK_DEVICE_STATUS). */
  readonly deviceEvents: boolean;
  forAlert(alert: Alert, transition: AlertTransition): readonly OutboxRow[];
  forStatusChange(change: StatusChange): readonly OutboxRow[];
}

export interface WriterOptions {
  readonly batchRows: number;
  readonly flushMs: number;
  /**
   * Telemetry rows queued before new ones are dropped and counted. With QoS 1 held acknowledgements
   * (the ack gate, MQTT_RECEIVE_MAXIMUM) keep the queue below it, so nothing is dropped; with QoS 0
   * nothing else bounds it. Status changes never count against it: a fleet-wide wave of transitions
   * (a million devices coming back after a restart) must not make the hub drop readings it holds
   * acknowledgements for.
   */
  readonly maxQueue: number;
  /** How often device rows (last seen, newest reading) are brought up to date (WRITER_DEVICE_REFRESH_MS). */
  readonly deviceRefreshMs: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Notifications on: alert transitions (and status changes) carry their outbox rows, stored in the same transaction. */
  readonly notifications?: OutboxPlanner | null;
}

/** Where the queues stood when a message was taken in: it is durable once both are written past it. */
export interface DurabilityMark {
  readonly telemetry: number;
  readonly statusChanges: number;
}

export interface WriterStats {
  readonly depth: number;
  readonly saturated: boolean;
  readonly retrying: boolean;
}

/**
 * The hub's only path to the database: enqueue is synchronous and O(1); rows are written in
 * batches by size or interval, retried through outages until they are stored, never dropped. A row
 * the database refuses (a data error) is kept in `dead_letters` instead, so it cannot stall the
 * rest (docs/storage.md). Past `maxQueue` telemetry rows (only reached at QoS 0), new ones are
 * dropped and counted (`vigil_writer_dropped_total`) rather than growing memory without bound.
 */
export interface Writer extends EventSink {
  readonly depth: number;
  /** Resolves when everything enqueued before the call is written. */
  flush(): Promise<void>;
  /** The position of everything enqueued so far (see `isDurable`). */
  mark(): DurabilityMark;
  isDurable(mark: DurabilityMark): boolean;
  /** Called after every batch written. */
  onProgress(listener: () => void): void;
  /** Writes the open batches now rather than at the next interval. */
  kick(): void;
  /** Flushes (waiting up to `deadlineMs` while the database is away) and stops. */
  close(deadlineMs?: number): Promise<void>;
  stats(): WriterStats;
}

const REFUSAL_LOG_INTERVAL_MS = 60_000;

export function createWriter(database: Database, opts: WriterOptions): Writer {
  const { log, metrics } = opts;
  const batchRows = Math.min(opts.batchRows, database.maxBatchRows);
  // A backlog of a one-at-a-time table (status changes, health, alerts, commands, device rows: a
  // fleet-wide wave backs them up) is written in batches of up to four times the batch size (at most
  // the database's limit): most of the per-statement saving, with a JSON encoding of a few
  // milliseconds at most. Telemetry keeps its batch size: three batches in flight keep up, and a
  // bigger batch would only hold QoS 1 acknowledgements longer.
  const maxMergedRows = Math.min(database.maxBatchRows, 4 * batchRows);
  const progressListeners: (() => void)[] = [];
  let saturated = false;

  // Logs name the table, SQLSTATE, message and row count only: never the SQL or its parameters,
  // which hold device data (and Drizzle's error message holds both).
  const queueFor = <T extends { readonly deviceId: string }>(table: string, maxInFlight: number, write: (rows: T[]) => Promise<void>) => {
    const rowsCounter = metrics.writerRows.labels({ table });
    // Refusals are logged at most once a minute per table (every one is counted and kept).
    let lastRefusalLog = -Infinity;
    let refusedSinceLog = 0;
    return new BatchQueue<T>({
      batchRows,
      maxMergedRows: maxInFlight === 1 ? maxMergedRows : batchRows,
      maxInFlight,
      write,
      async reject(row, failure) {
        let kept = true;
        try {
          await insertDeadLetter(database.db, { table, row, failure });
        } catch (error) {
          // An outage: thrown, so the row is retried with its batch (and counted then). Refused
          // itself: dropped, never blocking.
          const refused = refusalOf(error);
          if (refused === null) throw error;
          kept = false;
          metrics.writerDeadLetterDropped.inc({ table });
          log.error({ table, sqlstate: failure.sqlstate, deadLetterSqlstate: refused.sqlstate, err: refused.message }, 'refused row could not be dead-lettered either; dropped');
        }
        metrics.writerRejectedRows.inc({ table, reason: failure.sqlstate ?? 'unknown' });
        if (!kept) return;
        refusedSinceLog++;
        const now = Date.now();
        if (now - lastRefusalLog < REFUSAL_LOG_INTERVAL_MS) return;
        log.warn({ table, sqlstate: failure.sqlstate, err: failure.message, rows: refusedSinceLog }, 'database refused rows; kept in dead_letters (logged at most once a minute)');
        lastRefusalLog = now;
        refusedSinceLog = 0;
      },
      onWritten(rows, seconds) {
        rowsCounter.inc(rows);
        metrics.writerFlushSeconds.observe(seconds);
        afterWrite();
      },
      onFailure(error, attempt, rows) {
        metrics.writerRetries.inc();
        if (attempt !== 1) return;
        const { sqlstate, message } = describeDbFailure(error);
        log.warn({ table, sqlstate, err: message, rows }, 'database write failed; retrying with backoff (nothing is dropped)');
      },
      onRecovered(afterAttempts) {
        log.info({ table, afterAttempts }, 'database writes recovered');
      },
    });
  };
  const telemetry = queueFor<Telemetry>('telemetry', database.maxInFlight, (rows) => insertTelemetry(database.db, rows));
  // One batch in flight keeps status changes in order, so a device's current status never regresses.
  const statusChanges = queueFor<WithNotifications<StatusChange>>('status_changes', 1, (rows) =>
    writeWithOutbox(database.db, rows, (db) => insertStatusChanges(db, rows)),
  );

  const healthScores = queueFor<HealthRow>('health_scores', 1, (rows) => insertHealthScores(database.db, rows));
  // One batch at a time keeps each alert's states in order.
  const alerts = queueFor<WithNotifications<Alert>>('alerts', 1, (rows) => writeWithOutbox(database.db, rows, (db) => upsertAlerts(db, rows)));
  const planner = opts.notifications ?? null;
  const commands = queueFor<Command>('commands', 1, (rows) => upsertCommands(database.db, rows));

  // Device rows (last seen, newest reading) are refreshed every `deviceRefreshMs` from the newest
  // reading of each device, not per batch: concurrent batches would otherwise fight over the same
  // rows' locks, and for a fleet of many slow devices each refresh costs as much as its telemetry.
  let newestByDevice = new Map<string, Telemetry>();
  const devices = queueFor<Telemetry>('devices', 1, (rows) => upsertDevicesSeen(database.db, rows));
  const moveDeviceRows = () => {
    if (newestByDevice.size === 0) return;
    const newest = newestByDevice;
    newestByDevice = new Map();
    for (const t of newest.values()) devices.push(t);
    devices.kick();
  };
  const deviceTimer = setInterval(moveDeviceRows, opts.deviceRefreshMs);
  deviceTimer.unref();

  // The rows a message waits for before its acknowledgement (reported as the writer's depth).
  const depth = () => telemetry.depth + statusChanges.depth;
  // The gauge counts every table's rows; the bound applies to telemetry rows alone.
  const rowsWaiting = () => depth() + healthScores.depth + alerts.depth + commands.depth;
  const afterWrite = () => {
    metrics.writerQueueDepth.set(rowsWaiting());
    for (const listener of progressListeners) listener();
    if (saturated && telemetry.depth < opts.maxQueue / 2) {
      saturated = false;
      metrics.ingestPaused.set(0);
    }
  };
  const afterEnqueue = () => {
    if (!saturated && telemetry.depth >= opts.maxQueue) {
      saturated = true;
      metrics.ingestPaused.set(1);
      log.warn({ depth: telemetry.depth }, 'write queue full: new telemetry rows are dropped and counted until the database catches up');
    }
  };

  const timer = setInterval(() => {
    telemetry.kick();
    statusChanges.kick();
    healthScores.kick();
    alerts.kick();
    commands.kick();
    metrics.writerQueueDepth.set(rowsWaiting());
  }, opts.flushMs);
  timer.unref();

  const flush = async () => {
    moveDeviceRows();
    await Promise.all([telemetry.flushed(), statusChanges.flushed(), devices.flushed(), healthScores.flushed(), alerts.flushed(), commands.flushed()]);
  };

  return {
    enqueueTelemetry(t) {
      // Held acknowledgements bound the queue with QoS 1; with QoS 0 nothing does, so past the
      // limit rows are dropped (and counted) rather than growing memory without bound.
      if (saturated && telemetry.depth >= opts.maxQueue) {
        metrics.writerDropped.inc();
        return;
      }
      telemetry.push(t);
      const seen = newestByDevice.get(t.deviceId);
      if (seen === undefined || t.ts >= seen.ts) newestByDevice.set(t.deviceId, t);
      afterEnqueue();
    },
    enqueueStatusChange(c) {
      const notify = planner?.deviceEvents ? planner.forStatusChange(c) : undefined;
      statusChanges.push(notify === undefined || notify.length === 0 ? c : { ...c, notify });
      afterEnqueue();
    },
    enqueueHealthScore(deviceId, health) {
      healthScores.push({ deviceId, health });
    },
    enqueueAlert(alert: Alert, transition?: AlertTransition) {
      const notify = planner !== null && transition !== undefined ? planner.forAlert(alert, transition) : undefined;
      alerts.push(notify === undefined || notify.length === 0 ? alert : { ...alert, notify });
    },
    enqueueCommand(command) {
      commands.push(command);
    },
    get depth() {
      return depth();
    },
    flush,
    mark: () => ({ telemetry: telemetry.enqueuedCount, statusChanges: statusChanges.enqueuedCount }),
    isDurable: (mark) => telemetry.durableThrough() >= mark.telemetry && statusChanges.durableThrough() >= mark.statusChanges,
    onProgress(listener) {
      progressListeners.push(listener);
    },
    kick() {
      telemetry.kick();
      statusChanges.kick();
    },
    async close(deadlineMs = 10_000) {
      clearInterval(timer);
      clearInterval(deviceTimer);
      let deadline: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        deadline = setTimeout(() => resolve('timeout'), deadlineMs);
      });
      const outcome = await Promise.race([flush().then(() => 'flushed' as const), timedOut]);
      clearTimeout(deadline);
      telemetry.stop();
      statusChanges.stop();
      devices.stop();
      healthScores.stop();
      alerts.stop();
      commands.stop();
      if (outcome === 'timeout') log.error({ unwritten: depth() }, 'writer closed with rows it could not write');
    },
    stats: () => ({ depth: depth(), saturated, retrying: telemetry.retrying || statusChanges.retrying || alerts.retrying }),
  };
}
