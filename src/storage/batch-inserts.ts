import { sql } from 'drizzle-orm';
import type { StatusChange } from '../domain/device-status.js';
import type { Telemetry } from '../domain/telemetry.js';
import type { VigilDb } from './database.js';
import type { Command } from '../domain/command.js';
import type { Alert, ScoredHealth } from '../domain/alert.js';

/**
 * Multi-row writes as one statement with one parameter: the batch as a JSON array expanded by
 * json_to_recordset. Parsing stays constant whatever the batch size, and the same SQL runs on
 * PostgreSQL and PGlite. Timestamps travel as epoch ms.
 */

/** Inserts telemetry; a (device_id, ts) already stored (a broker redelivery) is skipped. */
export async function insertTelemetry(db: VigilDb, rows: readonly Telemetry[]): Promise<void> {
  const json = JSON.stringify(rows.map(toTelemetryRecord));
  await db.execute(sql`
    insert into telemetry (device_id, ts, received_at, battery_level, rssi, response_time_ms, error_rate, metrics)
    select r.d, to_timestamp(r.t / 1000.0), to_timestamp(r.r / 1000.0), r.b, r.s, r.p, r.e, r.m
    from json_to_recordset(${json}::json)
      as r(d text, t double precision, r double precision, b double precision, s double precision,
           p double precision, e double precision, m jsonb)
    on conflict (device_id, ts) do nothing`);
}

function toTelemetryRecord(t: Telemetry) {
  return { d: t.deviceId, t: t.ts, r: t.receivedAt, b: t.batteryLevel, s: t.rssi, p: t.responseTimeMs, e: t.errorRate, m: t.metrics };
}

/**
 * Keeps the registry's last_seen and last_telemetry current, one row per device (the newest
 * reading of each); a row already newer in the table is kept.
 */
export async function upsertDevicesSeen(db: VigilDb, newest: readonly Telemetry[]): Promise<void> {
  const json = JSON.stringify(newest.map((t) => ({ d: t.deviceId, r: t.receivedAt, t: toStoredTelemetry(t) })));
  await db.execute(sql`
    insert into devices (id, first_seen, last_seen, last_telemetry, updated_at)
    select r.d, to_timestamp(r.r / 1000.0), to_timestamp(r.r / 1000.0), r.t, now()
    from json_to_recordset(${json}::json) as r(d text, r double precision, t jsonb)
    order by r.d
    on conflict (id) do update set
      last_seen = greatest(devices.last_seen, excluded.last_seen),
      last_telemetry = case
        when devices.last_telemetry is null
          or (devices.last_telemetry->>'ts')::double precision <= (excluded.last_telemetry->>'ts')::double precision
        then excluded.last_telemetry else devices.last_telemetry end,
      updated_at = now()`);
}

function toStoredTelemetry(t: Telemetry) {
  return {
    ts: t.ts,
    receivedAt: t.receivedAt,
    batteryLevel: t.batteryLevel,
    rssi: t.rssi,
    responseTimeMs: t.responseTimeMs,
    errorRate: t.errorRate,
    metrics: t.metrics,
  };
}

/** Appends status changes and moves each device's current status to its newest change. */
export async function insertStatusChanges(db: VigilDb, rows: readonly StatusChange[]): Promise<void> {
  const json = JSON.stringify(
    rows.map((c) => ({ d: c.deviceId, s: c.status, p: c.previous, why: c.reason, l: c.lastSeen, a: c.at })),
  );
  await db.execute(sql`
    insert into status_changes (device_id, status, previous, reason, last_seen, at)
    select r.d, r.s, r.p, r.why, to_timestamp(r.l / 1000.0), to_timestamp(r.a / 1000.0)
    from json_to_recordset(${json}::json)
      as r(d text, s text, p text, why text, l double precision, a double precision)
    on conflict (device_id, at, status) do nothing`);
  const newest = new Map<string, StatusChange>();
  for (const c of rows) {
    const seen = newest.get(c.deviceId);
    if (seen === undefined || c.at >= seen.at) newest.set(c.deviceId, c);
  }
  const devicesJson = JSON.stringify([...newest.values()].map((c) => ({ d: c.deviceId, s: c.status, l: c.lastSeen })));
  await db.execute(sql`
    insert into devices (id, status, last_seen, first_seen, updated_at)
    select r.d, r.s, to_timestamp(r.l / 1000.0), coalesce(to_timestamp(r.l / 1000.0), now()), now()
    from json_to_recordset(${devicesJson}::json) as r(d text, s text, l double precision)
    order by r.d
    on conflict (id) do update set
      status = excluded.status,
      last_seen = greatest(devices.last_seen, excluded.last_seen),
      updated_at = now()`);
}

export interface HealthRow {
  readonly deviceId: string;
  readonly health: ScoredHealth;
}

export async function insertHealthScores(db: VigilDb, rows: readonly HealthRow[]): Promise<void> {
  const json = JSON.stringify(rows.map((r) => ({ d: r.deviceId, t: r.health.at, s: r.health.score, c: r.health.components })));
  await db.execute(sql`
    insert into health_scores (device_id, ts, score, components)
    select r.d, to_timestamp(r.t / 1000.0), r.s, r.c
    from json_to_recordset(${json}::json) as r(d text, t double precision, s real, c jsonb)
    on conflict (device_id, ts) do nothing`);
}

/**
 * Writes alert states: new alerts are inserted (a second active alert of the same device and type,
 * from another hub, is refused by the partial unique index and skipped), known ones updated to
 * their newest state. Rows of one batch are folded to the newest state per alert first.
 */
export async function upsertAlerts(db: VigilDb, rows: readonly Alert[]): Promise<void> {
  const json = newestAsJson(rows, (a) => ({
    i: a.id,
    d: a.deviceId,
    ty: a.type,
    sv: a.severity,
    st: a.state,
    da: a.data,
    ra: a.raisedAt,
    up: a.updatedAt,
    cl: a.clearedAt,
    ac: a.acknowledgedAt,
    by: a.acknowledgedBy,
  }));
  const records = sql`json_to_recordset(${json}::json) as r(i text, d text, ty text, sv text, st text, da jsonb, ra double precision, up double precision, cl double precision, ac double precision, by text)`;
  await db.execute(sql`
    insert into alerts (id, device_id, type, severity, state, data, raised_at, updated_at, cleared_at, acknowledged_at, acknowledged_by)
    select r.i, r.d, r.ty, r.sv, r.st, r.da, to_timestamp(r.ra / 1000.0), to_timestamp(r.up / 1000.0),
           to_timestamp(r.cl / 1000.0), to_timestamp(r.ac / 1000.0), r.by
    from ${records}
    on conflict do nothing`);
  await db.execute(sql`
    update alerts set severity = r.sv, state = r.st, data = r.da, updated_at = to_timestamp(r.up / 1000.0),
      cleared_at = to_timestamp(r.cl / 1000.0), acknowledged_at = to_timestamp(r.ac / 1000.0), acknowledged_by = r.by
    from ${records}
    where alerts.id = r.i and alerts.updated_at <= to_timestamp(r.up / 1000.0)`);
}

/** Writes command states: insert new ones, then move known ones to their newest state. */
export async function upsertCommands(db: VigilDb, rows: readonly Command[]): Promise<void> {
  const json = newestAsJson(rows, (c) => ({
    i: c.id,
    d: c.deviceId,
    c: c.command,
    p: c.params,
    s: c.state,
    a: c.attempts,
    m: c.maxAttempts,
    t: c.timeoutS,
    k: c.idempotencyKey,
    r: c.result === null || c.result === undefined ? null : JSON.stringify(c.result),
    cr: c.createdAt,
    up: c.updatedAt,
    ex: c.expiresAt,
  }));
  const records = sql`json_to_recordset(${json}::json) as r(i text, d text, c text, p jsonb, s text, a int, m int, t int, k text, r text, cr double precision, up double precision, ex double precision)`;
  await db.execute(sql`
    insert into commands (id, device_id, command, params, state, attempts, max_attempts, timeout_s, idempotency_key, result, created_at, updated_at, expires_at)
    select r.i, r.d, r.c, r.p, r.s, r.a, r.m, r.t, r.k, r.r::jsonb, to_timestamp(r.cr / 1000.0), to_timestamp(r.up / 1000.0), to_timestamp(r.ex / 1000.0)
    from ${records}
    on conflict do nothing`);
  await db.execute(sql`
    update commands set state = r.s, attempts = r.a, result = r.r::jsonb, updated_at = to_timestamp(r.up / 1000.0)
    from ${records}
    where commands.id = r.i and commands.updated_at <= to_timestamp(r.up / 1000.0)`);
}

/** The newest state per id in a batch (later rows win), as the JSON records json_to_recordset reads. */
function newestAsJson<T extends { readonly id: string }>(rows: readonly T[], toRecord: (row: T) => Record<string, unknown>): string {
  const newest = new Map<string, T>();
  for (const row of rows) newest.set(row.id, row);
  return JSON.stringify([...newest.values()].map(toRecord));
}
