import postgres from 'postgres';

/** What every seeded device `bench-<i>` holds, so a restored snapshot can be checked against it. */
export const seededReading = (i: number) => ({ batteryLevel: 50 + (i % 50), rssi: -60 - (i % 30) });

/** One active alert per this many devices (restore loads every active alert). */
export const ALERT_EVERY = 20;

/**
 * Writes a fleet of `devices` devices straight into the hub's tables (src/storage/schema), as a
 * hub that had heard them would have left them: each device `status` (online: the restart has
 * presence to reconcile), last seen `at`, with its
 * newest telemetry in devices.last_telemetry, one health score, and one active alert per
 * ALERT_EVERY devices. One `insert … select generate_series` per table: PostgreSQL builds the rows
 * itself, so a million devices take seconds, not a publish run. Device ids are `bench-<i>`, the
 * names bench/load/publisher.ts uses. The tables must exist (the hub ran its migrations once).
 */
export async function seedFleet(databaseUrl: string, devices: number, at: number, status: 'online' | 'offline' = 'online'): Promise<{ seconds: number; alerts: number }> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => undefined });
  const started = performance.now();
  try {
    const seen = new Date(at);
    await sql`
      insert into devices (id, type, status, first_seen, last_seen, updated_at, last_telemetry)
      select 'bench-' || i, 'sensor', ${status}, ${seen}, ${seen}, ${seen},
        jsonb_build_object('ts', ${at}::bigint, 'receivedAt', ${at}::bigint, 'batteryLevel', 50 + i % 50, 'rssi', -60 - i % 30,
          'responseTimeMs', 100 + i % 100, 'errorRate', 0.01, 'metrics', jsonb_build_object('temperature', 21.5))
      from generate_series(0, ${devices - 1}::int) as i
      on conflict (id) do nothing`;
    await sql`
      insert into health_scores (device_id, ts, score, components)
      select 'bench-' || i, ${seen}, 70 + i % 30,
        jsonb_build_object('battery', jsonb_build_object('value', 50 + i % 50, 'score', 50 + i % 50, 'weight', 0.5),
          'signal', jsonb_build_object('value', -60 - i % 30, 'score', 80, 'weight', 0.5))
      from generate_series(0, ${devices - 1}::int) as i
      on conflict do nothing`;
    const alerts = await sql`
      insert into alerts (id, device_id, type, severity, state, data, raised_at, updated_at)
      select 'bench-alert-' || i, 'bench-' || i, 'low_battery', 'warning', 'raised',
        jsonb_build_object('battery_level', 50 + i % 50), ${seen}, ${seen}
      from generate_series(0, ${devices - 1}::int, ${ALERT_EVERY}::int) as i
      on conflict do nothing`;
    // Fresh statistics, as a long-running database would have: the restore queries plan on them.
    await sql`analyze devices`;
    await sql`analyze health_scores`;
    await sql`analyze alerts`;
    return { seconds: (performance.now() - started) / 1000, alerts: alerts.count };
  } finally {
    await sql.end();
  }
}
