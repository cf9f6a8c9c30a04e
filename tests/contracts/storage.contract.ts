import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusChange } from '../../src/domain/device-status.js';
import type { Telemetry } from '../../src/domain/telemetry.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { resultRows, type Database } from '../../src/storage/database.js';
import { getStatusHistory, getTelemetryHistory, loadDeviceStates } from '../../src/storage/device-repository.js';
import { getMetricBuckets } from '../../src/storage/metrics-repository.js';
import { applyRetention } from '../../src/storage/retention.js';
import { createWriter, type Writer } from '../../src/storage/writer.js';

const log = createLogger('silent');
let n = 0;
const unique = (name: string) => `${name}-${++n}-${Math.random().toString(36).slice(2, 6)}`;

const reading = (deviceId: string, ts: number, extra: Partial<Telemetry> = {}): Telemetry => ({
  deviceId,
  ts,
  receivedAt: ts + 5,
  batteryLevel: 80,
  rssi: -60,
  responseTimeMs: 100,
  errorRate: 0.01,
  metrics: { temperature: 20 },
  ...extra,
});

const change = (deviceId: string, status: 'online' | 'offline', at: number): StatusChange => ({
  deviceId,
  status,
  previous: status === 'online' ? 'offline' : 'online',
  reason: status === 'online' ? 'telemetry' : 'timeout',
  lastSeen: at,
  at,
});

async function count(database: Database, table: string, deviceId: string): Promise<number> {
  const result = await database.db.execute(sql`select count(*)::int as n from ${sql.raw(table)} where device_id = ${deviceId}`);
  const rows = resultRows<{ n: number }>(result);
  return Number(rows[0]!.n);
}

/** One suite for both storage engines: `open` gives a migrated database; `reopen` the same one after close. */
export function runStorageContract(name: string, open: () => Promise<Database>): void {
  describe(`storage contract (${name})`, () => {
    let database: Database;
    let writer: Writer;
    beforeAll(async () => {
      database = await open();
      writer = createWriter(database, { batchRows: 100, flushMs: 20, maxQueue: 10_000, deviceRefreshMs: 1000, log, metrics: createMetrics() });
    });
    afterAll(async () => {
      await writer?.close();
      await database?.close();
    });

    it('applies the migrations from empty', async () => {
      for (const table of ['devices', 'telemetry', 'status_changes', 'health_scores', 'alerts', 'commands', 'api_keys']) {
        const result = await database.db.execute(sql`select to_regclass(${table}) as t`);
        const rows = resultRows<{ t: string | null }>(result);
        expect(rows[0]!.t, table).not.toBeNull();
      }
    });

    it('writes telemetry in batches, once per (device, timestamp), and knows when it is durable', async () => {
      const id = unique('w');
      const t0 = Date.UTC(2026, 0, 1);
      for (let i = 0; i < 250; i++) writer.enqueueTelemetry(reading(id, t0 + i * 1000));
      for (let i = 0; i < 50; i++) writer.enqueueTelemetry(reading(id, t0 + i * 1000)); // redelivered copies
      const mark = writer.mark();
      expect(writer.isDurable(mark)).toBe(false);
      await writer.flush();
      expect(writer.isDurable(mark)).toBe(true);
      expect(await count(database, 'telemetry', id)).toBe(250);
      expect(writer.depth).toBe(0);
    });

    it('keeps each device row current: newest telemetry, last seen, status', async () => {
      const id = unique('dev');
      const t0 = Date.UTC(2026, 0, 2);
      writer.enqueueTelemetry(reading(id, t0 + 2000, { batteryLevel: 50 }));
      writer.enqueueTelemetry(reading(id, t0 + 1000, { batteryLevel: 60 })); // late, older reading
      writer.enqueueStatusChange(change(id, 'online', t0 + 1000));
      await writer.flush();
      const state = (await loadDeviceStates(database.db, 1_000_000)).states.find((d) => d.id === id)!;
      expect(state.status).toBe('online');
      expect(state.lastTelemetry).toMatchObject({ deviceId: id, ts: t0 + 2000, batteryLevel: 50 });
      expect(state.lastSeen).toBe(t0 + 2005);
    });

    it('refreshes device rows on its own every deviceRefreshMs, without a flush', async () => {
      const own = createWriter(database, { batchRows: 100, flushMs: 20, maxQueue: 10_000, deviceRefreshMs: 100, log, metrics: createMetrics() });
      try {
        const id = unique('refresh');
        const t0 = Date.UTC(2026, 0, 3);
        own.enqueueTelemetry(reading(id, t0, { batteryLevel: 42 }));
        const deadline = Date.now() + 2000;
        let state: Awaited<ReturnType<typeof loadDeviceStates>>['states'][number] | undefined;
        while (Date.now() < deadline && state?.lastTelemetry == null) {
          await new Promise((r) => setTimeout(r, 50));
          state = (await loadDeviceStates(database.db, 1_000_000)).states.find((d) => d.id === id);
        }
        expect(state?.lastTelemetry).toMatchObject({ deviceId: id, ts: t0, batteryLevel: 42 });
      } finally {
        await own.close();
      }
    });

    it('pages history newest first with a before cursor', async () => {
      const id = unique('h');
      const t0 = Date.UTC(2026, 0, 3);
      for (let i = 0; i < 25; i++) writer.enqueueTelemetry(reading(id, t0 + i * 60_000, { batteryLevel: i }));
      for (let i = 0; i < 5; i++) writer.enqueueStatusChange(change(id, i % 2 === 0 ? 'online' : 'offline', t0 + i * 1000));
      await writer.flush();
      const first = await getTelemetryHistory(database.db, id, { limit: 10 });
      expect(first.totalRecords).toBe(25);
      expect(first.hasMore).toBe(true);
      expect(first.history.map((h) => h.batteryLevel)).toEqual([24, 23, 22, 21, 20, 19, 18, 17, 16, 15]);
      const second = await getTelemetryHistory(database.db, id, { limit: 10, before: first.history.at(-1)!.ts });
      expect(second.history[0]!.batteryLevel).toBe(14);
      const since = await getTelemetryHistory(database.db, id, { limit: 100, since: t0 + 20 * 60_000 });
      expect(since.history).toHaveLength(5);
      expect(since.hasMore).toBe(false);
      const statuses = await getStatusHistory(database.db, id, { limit: 3 });
      expect(statuses.history.map((s) => s.status)).toEqual(['online', 'offline', 'online']);
      expect(statuses).toMatchObject({ totalRecords: 5, hasMore: true });
    });

    it('aggregates metrics per minute bucket, sensor metrics included', async () => {
      const id = unique('m');
      const t0 = Date.UTC(2026, 0, 4, 10, 0, 0);
      for (let i = 0; i < 6; i++) writer.enqueueTelemetry(reading(id, t0 + i * 20_000, { batteryLevel: 90 - i, metrics: { temperature: 20 + i } }));
      await writer.flush();
      const buckets = await getMetricBuckets(database.db, id, { from: t0, to: t0 + 120_000, bucket: '1m', sensors: ['temperature'] });
      expect(buckets).toHaveLength(2);
      expect(buckets[0]).toMatchObject({ start: t0, count: 3, fields: { battery_level: { avg: 89, min: 88, max: 90 }, temperature: { min: 20, max: 22 } } });
    });

    it('retention deletes old telemetry in batches and keeps recent rows and active alerts', async () => {
      const id = unique('r');
      const now = Date.now();
      for (let i = 0; i < 120; i++) writer.enqueueTelemetry(reading(id, now - 40 * 86_400_000 + i));
      writer.enqueueTelemetry(reading(id, now - 1000));
      await writer.flush();
      await database.db.execute(sql`insert into alerts (id, device_id, type, severity, state, raised_at, updated_at)
        values (${`${id}-a1`}, ${id}, 'low_battery', 'minor', 'raised', now() - interval '400 days', now() - interval '400 days'),
               (${`${id}-a2`}, ${id}, 'slow', 'minor', 'cleared', now() - interval '400 days', now() - interval '400 days')`);
      const result = await applyRetention(database.db, { telemetryDays: 30, historyDays: 365, batchRows: 50, pauseMs: 1 }, now);
      expect(result.telemetry).toBeGreaterThanOrEqual(120);
      expect(await count(database, 'telemetry', id)).toBe(1);
      expect(await count(database, 'alerts', id)).toBe(1);
    });
  });
}
