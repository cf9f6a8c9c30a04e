import { sql } from 'drizzle-orm';
import { resultRows, type VigilDb } from './database.js';

export type Bucket = '1m' | '1h';

export interface MetricBucket {
  readonly start: number;
  readonly count: number;
  /** Per field: avg, min and max over the bucket (null when no sample had the field). */
  readonly fields: Record<string, { avg: number | null; min: number | null; max: number | null }>;
}

const STANDARD_FIELDS = ['battery_level', 'rssi', 'response_time_ms', 'error_rate'] as const;
const SENSOR_NAME = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Aggregates a device's telemetry into minute or hour buckets for charts: the standard readings
 * and any sensor metrics asked for by name. Uses the (device_id, ts) primary key for the range.
 */
export async function getMetricBuckets(
  db: VigilDb,
  deviceId: string,
  opts: { from: number; to: number; bucket: Bucket; sensors: readonly string[] },
): Promise<MetricBucket[]> {
  const unit = opts.bucket === '1m' ? 'minute' : 'hour';
  const sensors = opts.sensors.filter((name) => SENSOR_NAME.test(name));
  const columns = [
    ...STANDARD_FIELDS.map((f) => ({ name: f, expr: sql.raw(f) })),
    ...sensors.map((name) => ({ name, expr: sql`(metrics->>${name})::double precision` })),
  ];
  const selects = columns.map(
    (c, i) => sql`avg(${c.expr}) as ${sql.raw(`a${i}`)}, min(${c.expr}) as ${sql.raw(`n${i}`)}, max(${c.expr}) as ${sql.raw(`x${i}`)}`,
  );
  const result = await db.execute(sql`
    select extract(epoch from date_trunc(${unit}, ts)) * 1000 as start, count(*)::int as count, ${sql.join(selects, sql`, `)}
    from telemetry
    where device_id = ${deviceId} and ts >= ${new Date(opts.from).toISOString()}::timestamptz and ts < ${new Date(opts.to).toISOString()}::timestamptz
    group by 1 order by 1`);
  const rows = resultRows<Record<string, string | number | null>>(result);
  const num = (v: string | number | null | undefined) => (v === null || v === undefined ? null : Number(v));
  return rows.map((row) => ({
    start: Number(row.start),
    count: Number(row.count),
    fields: Object.fromEntries(columns.map((c, i) => [c.name, { avg: num(row[`a${i}`]), min: num(row[`n${i}`]), max: num(row[`x${i}`]) }])),
  }));
}
