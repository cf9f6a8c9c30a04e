import { sql } from 'drizzle-orm';
import type { CloudEvent } from '../domain/cloud-event.js';
import { resultRows, type VigilDb } from './database.js';

/** One row to write: an event for one sink. */
export interface OutboxRow {
  readonly sink: string;
  readonly event: CloudEvent;
}

/** A row an instance claimed and now delivers. */
export interface ClaimedRow {
  readonly seq: number;
  readonly sink: string;
  readonly event: CloudEvent;
  /** Including this one. */
  readonly attempts: number;
  readonly createdAt: number;
}

/**
 * Writes rows in the caller's transaction (the one storing the alert state). A retried write
 * yields the same (sink, id) and is skipped, so an event is in the outbox once.
 */
export async function insertOutbox(db: VigilDb, rows: readonly OutboxRow[]): Promise<void> {
  if (rows.length === 0) return;
  const json = JSON.stringify(rows.map((r) => ({ i: r.event.id, s: r.sink, su: r.event.subject, ty: r.event.type, e: r.event })));
  await db.execute(sql`
    insert into notification_outbox (id, sink, subject, type, event)
    select r.i, r.s, r.su, r.ty, r.e
    from json_to_recordset(${json}::json) as r(i text, s text, su text, ty text, e jsonb)
    on conflict (sink, id) do nothing`);
}

/**
 * Claims up to `limit` due rows of `sinks` (the ones this instance has: a row of another sink is
 * never delivered to one of these) for `owner` until `leaseMs` from now. FOR UPDATE SKIP LOCKED: two
 * instances claiming at once take different rows; the lease (checked again on the locked row) keeps
 * a claimed row from being claimed again while its delivery runs. A row waits while an earlier row of
 * the same sink and subject is pending, so each receiver gets one alert's events in order.
 */
export async function claimDue(db: VigilDb, owner: string, limit: number, leaseMs: number, sinks: readonly string[]): Promise<ClaimedRow[]> {
  const result = await db.execute(sql`
    update notification_outbox o
    set claimed_by = ${owner}, lease_until = now() + ${leaseMs} * interval '1 millisecond', attempts = o.attempts + 1
    where o.seq in (
      select c.seq from notification_outbox c
      where c.state = 'pending' and c.next_attempt_at <= now() and (c.lease_until is null or c.lease_until < now())
        and c.sink in (select json_array_elements_text(${JSON.stringify(sinks)}::json))
        and not exists (
          select 1 from notification_outbox p
          where p.sink = c.sink and p.subject = c.subject and p.seq < c.seq and p.state = 'pending')
      order by c.seq
      limit ${limit}
      for update of c skip locked)
      and o.state = 'pending'
    returning o.seq, o.sink, o.event, o.attempts, extract(epoch from o.created_at) * 1000 as created_ms`);
  return resultRows<{ seq: string | number; sink: string; event: CloudEvent; attempts: number; created_ms: string | number }>(result).map((r) => ({
    seq: Number(r.seq),
    sink: r.sink,
    event: r.event,
    attempts: Number(r.attempts),
    createdAt: Number(r.created_ms),
  }));
}

/** Delivered: the row goes. Only while this owner's claim holds (a lost lease leaves it to the new claimant). */
export async function completeDelivery(db: VigilDb, seq: number, owner: string): Promise<void> {
  await db.execute(sql`delete from notification_outbox where seq = ${seq} and claimed_by = ${owner}`);
}

/** Failed: pending again from `delayMs` on, or dead. */
export async function failDelivery(db: VigilDb, seq: number, owner: string, error: string, dead: boolean, delayMs: number): Promise<void> {
  await db.execute(sql`
    update notification_outbox
    set state = ${dead ? 'dead' : 'pending'}, next_attempt_at = now() + ${delayMs} * interval '1 millisecond',
        lease_until = null, claimed_by = null, last_error = ${error.slice(0, 500)}
    where seq = ${seq} and claimed_by = ${owner}`);
}

export interface OutboxStats {
  readonly sink: string;
  readonly pending: number;
  readonly dead: number;
  /** Seconds since the oldest pending row was written (0 when none). */
  readonly oldestPendingS: number;
}

export async function outboxStats(db: VigilDb): Promise<OutboxStats[]> {
  const result = await db.execute(sql`
    select sink,
      count(*) filter (where state = 'pending') as pending,
      count(*) filter (where state = 'dead') as dead,
      coalesce(extract(epoch from now() - min(created_at) filter (where state = 'pending')), 0) as oldest
    from notification_outbox group by sink`);
  return resultRows<{ sink: string; pending: string | number; dead: string | number; oldest: string | number }>(result).map((r) => ({
    sink: r.sink,
    pending: Number(r.pending),
    dead: Number(r.dead),
    oldestPendingS: Number(r.oldest),
  }));
}

/** Dead rows are kept this long for inspection (`select … from notification_outbox where state = 'dead'`). */
export const DEAD_KEEP_MS = 7 * 86_400_000;

export async function pruneDead(db: VigilDb, keepMs: number = DEAD_KEEP_MS): Promise<void> {
  await db.execute(sql`delete from notification_outbox where state = 'dead' and next_attempt_at < now() - ${keepMs} * interval '1 millisecond'`);
}

/**
 * Dead rows beyond the `keep` newest go, oldest first: the age bound (DEAD_KEEP_MS) alone lets a
 * receiver that refuses everything for days fill the table at the event rate. Returns how many
 * went, per sink.
 */
export async function pruneDeadOver(db: VigilDb, keep: number): Promise<Map<string, number>> {
  const result = await db.execute(sql`
    delete from notification_outbox
    where state = 'dead' and seq <= (
      select seq from notification_outbox where state = 'dead' order by seq desc offset ${keep} limit 1)
    returning sink`);
  const pruned = new Map<string, number>();
  for (const { sink } of resultRows<{ sink: string }>(result)) pruned.set(sink, (pruned.get(sink) ?? 0) + 1);
  return pruned;
}

/** What a row of a removed sink says once given up (GET /admin/notifications shows it). */
export const SINK_REMOVED_ERROR = 'sink_removed: its URL is no longer in ALERT_WEBHOOK_URL / ALERTMANAGER_URL';

/**
 * Pending rows of sinks not in `sinks` (their URL was taken out of the lists) and not claimed by an
 * instance that still has them: dead, with SINK_REMOVED_ERROR. Returns how many, per sink.
 */
export async function buryRemovedSinks(db: VigilDb, sinks: readonly string[]): Promise<Map<string, number>> {
  const result = await db.execute(sql`
    update notification_outbox
    set state = 'dead', last_error = ${SINK_REMOVED_ERROR}, next_attempt_at = now(), lease_until = null, claimed_by = null
    where state = 'pending' and (lease_until is null or lease_until < now())
      and sink not in (select json_array_elements_text(${JSON.stringify(sinks)}::json))
    returning sink`);
  const buried = new Map<string, number>();
  for (const { sink } of resultRows<{ sink: string }>(result)) buried.set(sink, (buried.get(sink) ?? 0) + 1);
  return buried;
}

/**
 * Rows stored under a name by position (`webhook-2`, before sinks were named by their URL) take the
 * name of the sink now at that position, in every state (dead ones stay replayable by the new name).
 * A row whose event is already there under the new name (the same URL was listed twice) is a
 * duplicate and goes. Returns how many rows were renamed.
 */
export async function renameLegacySinks(db: VigilDb, names: ReadonlyMap<string, string>): Promise<number> {
  let renamed = 0;
  for (const [legacy, current] of names) {
    const result = await db.execute(sql`
      update notification_outbox o set sink = ${current}
      where o.sink = ${legacy}
        and not exists (select 1 from notification_outbox n where n.sink = ${current} and n.id = o.id)
      returning seq`);
    renamed += resultRows(result).length;
    await db.execute(sql`
      delete from notification_outbox o
      where o.sink = ${legacy} and exists (select 1 from notification_outbox n where n.sink = ${current} and n.id = o.id)`);
  }
  return renamed;
}

/** Subjects (devices) with events still pending for `sink`: the Alertmanager re-send leaves their alerts to the outbox. */
export async function pendingSubjects(db: VigilDb, sink: string): Promise<Set<string>> {
  const result = await db.execute(sql`select distinct subject from notification_outbox where sink = ${sink} and state = 'pending'`);
  return new Set(resultRows<{ subject: string }>(result).map((r) => r.subject));
}

/** A queued row that may carry the notifications announcing it. */
export type WithNotifications<T> = T & { readonly notify?: readonly OutboxRow[] };

/**
 * Runs the writer's `write` for a batch and, when rows of it carry notifications, inserts those in
 * the same transaction: the alert state and the events announcing it are stored together or not
 * at all (the writer retries the whole batch), so no transition is stored without its events.
 */
export async function writeWithOutbox<T>(db: VigilDb, rows: readonly WithNotifications<T>[], write: (db: VigilDb) => Promise<void>): Promise<void> {
  const outbox: OutboxRow[] = [];
  for (const row of rows) if (row.notify !== undefined) outbox.push(...row.notify);
  if (outbox.length === 0) return write(db);
  await db.transaction(async (tx) => {
    await write(tx);
    await insertOutbox(tx, outbox);
  });
}

export interface DeadRow {
  readonly seq: number;
  readonly id: string;
  readonly sink: string;
  readonly type: string;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: string;
}

/** The newest dead rows (GET /admin/notifications). */
export async function listDead(db: VigilDb, limit: number): Promise<DeadRow[]> {
  const result = await db.execute(sql`
    select seq, id, sink, type, attempts, last_error, created_at from notification_outbox
    where state = 'dead' order by seq desc limit ${limit}`);
  return resultRows<{ seq: string | number; id: string; sink: string; type: string; attempts: number; last_error: string | null; created_at: string | Date }>(result).map((r) => ({
    seq: Number(r.seq),
    id: r.id,
    sink: r.sink,
    type: r.type,
    attempts: Number(r.attempts),
    lastError: r.last_error,
    createdAt: new Date(r.created_at).toISOString(),
  }));
}

/**
 * Dead rows (of one sink, or all) pending again with a fresh attempt budget; their age still counts.
 * Only rows of `configured` sinks: a removed sink's rows would only wait and go dead again.
 */
export async function replayDead(db: VigilDb, sink: string | null, configured: readonly string[]): Promise<number> {
  const result = await db.execute(sql`
    update notification_outbox set state = 'pending', attempts = 0, next_attempt_at = now(), last_error = null
    where state = 'dead' and (${sink}::text is null or sink = ${sink}::text)
      and sink in (select json_array_elements_text(${JSON.stringify(configured)}::json))
    returning seq`);
  return resultRows(result).length;
}
