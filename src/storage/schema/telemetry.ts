import { doublePrecision, index, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Append-only time series. The primary key (device_id, ts) makes a redelivered message a no-op
 * (ON CONFLICT DO NOTHING) and serves "latest N of a device" scans backwards. A BRIN index on ts
 * keeps retention deletes and fleet-wide time ranges cheap at a few KB per GB of table, because rows
 * arrive roughly in time order; time partitioning is the next step past ~1 billion rows (docs/scaling.md).
 */
export const telemetry = pgTable(
  'telemetry',
  {
    deviceId: text('device_id').notNull(),
    ts: timestamp('ts', { withTimezone: true, mode: 'date' }).notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull(),
    batteryLevel: doublePrecision('battery_level'),
    rssi: doublePrecision('rssi'),
    responseTimeMs: doublePrecision('response_time_ms'),
    errorRate: doublePrecision('error_rate'),
    metrics: jsonb('metrics').$type<Record<string, number>>(),
  },
  (t) => [primaryKey({ columns: [t.deviceId, t.ts] }), index('telemetry_ts_brin').using('brin', t.ts)],
);
