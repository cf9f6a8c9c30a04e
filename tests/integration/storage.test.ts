import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/storage/database.js';
import { loadDeviceStates } from '../../src/storage/device-repository.js';
import { createWriter } from '../../src/storage/writer.js';
import { resultRows } from '../../src/storage/database.js';
import { sql } from 'drizzle-orm';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { runStorageContract } from '../contracts/storage.contract.js';
import { freshDatabases } from '../helpers/fresh-database.js';

const databases = freshDatabases();
const freshPostgresUrl = () => databases.create();
afterAll(() => databases.dropAll());

const pgliteDir = mkdtempSync(join(tmpdir(), 'vigil-pglite-'));
runStorageContract('postgresql', async () => openDatabase({ url: await freshPostgresUrl(), dataDir: '/nonexistent' }));
runStorageContract('pglite', async () => openDatabase({ dataDir: pgliteDir }));

describe('state survives a restart', () => {
  for (const engine of ['postgresql', 'pglite'] as const) {
    it(`restores devices and their newest telemetry (${engine})`, async () => {
      const url = engine === 'postgresql' ? await freshPostgresUrl() : undefined;
      const dataDir = mkdtempSync(join(tmpdir(), 'vigil-restart-'));
      const first = await openDatabase({ url, dataDir });
      const writer = createWriter(first, { batchRows: 100, flushMs: 20, maxQueue: 1000, deviceRefreshMs: 1000, log: createLogger('silent'), metrics: createMetrics() });
      const at = Date.UTC(2026, 1, 1);
      writer.enqueueTelemetry({ deviceId: 'survivor', ts: at, receivedAt: at, batteryLevel: 33, rssi: -70, responseTimeMs: null, errorRate: null, metrics: { t: 1 } });
      writer.enqueueStatusChange({ deviceId: 'survivor', status: 'online', previous: null, reason: 'telemetry', lastSeen: at, at });
      await writer.close();
      await first.close();
      const second = await openDatabase({ url, dataDir });
      const [state] = (await loadDeviceStates(second.db, 10)).states;
      expect(state).toMatchObject({ id: 'survivor', status: 'online', lastSeen: at, lastTelemetry: { batteryLevel: 33, metrics: { t: 1 } } });
      await second.close();
    });
  }
});

describe('the telemetry bound', () => {
  for (const engine of ['postgresql', 'pglite'] as const) {
    it(`drops no reading because status changes are queued, only readings past the bound (${engine})`, async () => {
      const url = engine === 'postgresql' ? await freshPostgresUrl() : undefined;
      const database = await openDatabase({ url, dataDir: mkdtempSync(join(tmpdir(), 'vigil-bound-')) });
      const metrics = createMetrics();
      const writer = createWriter(database, { batchRows: 500, flushMs: 20, maxQueue: 1000, deviceRefreshMs: 60_000, log: createLogger('silent'), metrics });
      const at = Date.UTC(2026, 1, 1);
      const reading = (i: number) => ({ deviceId: `bound-${i % 50}`, ts: at + i, receivedAt: at + i, batteryLevel: 50, rssi: null, responseTimeMs: null, errorRate: null, metrics: null });
      // A fleet-wide wave of transitions queued at once (a restart of a large fleet), then readings.
      for (let i = 0; i < 3000; i++) writer.enqueueStatusChange({ deviceId: `wave-${i}`, status: 'online', previous: 'offline', reason: 'telemetry', lastSeen: at, at });
      for (let i = 0; i < 200; i++) writer.enqueueTelemetry(reading(i));
      const dropped = async () => (await metrics.registry.getSingleMetric('vigil_writer_dropped_total')!.get()).values[0]?.value ?? 0;
      expect(await dropped()).toBe(0);
      // Readings alone past the bound (QoS 0 with nothing holding acknowledgements) are dropped and counted.
      for (let i = 200; i < 1500; i++) writer.enqueueTelemetry(reading(i));
      expect(await dropped()).toBe(200 + 1300 - 1000);
      await writer.close();
      const stored = await database.db.execute(sql`select count(*)::int as n from telemetry`);
      expect(resultRows<{ n: number }>(stored)[0]!.n).toBe(1000);
      await database.close();
    });
  }
});

describe('device rows are updated in place (#21: a fleet-wide wave of status changes)', () => {
  for (const engine of ['postgresql', 'pglite'] as const) {
    it(`no index covers a column status changes or refreshes write, and pages keep room for HOT updates (${engine})`, async () => {
      const url = engine === 'postgresql' ? await freshPostgresUrl() : undefined;
      const database = await openDatabase({ url, dataDir: mkdtempSync(join(tmpdir(), 'vigil-hot-')) });
      const indexes = resultRows<{ indexdef: string }>(await database.db.execute(sql`select indexdef from pg_indexes where tablename = 'devices'`)).map((r) => r.indexdef);
      for (const written of ['status', 'last_seen', 'last_telemetry', 'updated_at']) {
        expect(indexes.filter((d) => new RegExp(`\\(${written}\\)|\\b${written}\\b`).test(d.replace(/^.*USING \\w+ /, '')))).toEqual([]);
      }
      const options = resultRows<{ reloptions: string[] | string | null }>(await database.db.execute(sql`select reloptions from pg_class where relname = 'devices'`))[0]!.reloptions;
      expect(String(options)).toContain('fillfactor=70');
      await database.close();
    });
  }

  it('a wave of status changes is written in merged batches, all of it, in order (postgresql)', async () => {
    const database = await openDatabase({ url: await freshPostgresUrl(), dataDir: '/nonexistent' });
    const metrics = createMetrics();
    const writer = createWriter(database, { batchRows: 500, flushMs: 20, maxQueue: 100_000, deviceRefreshMs: 60_000, log: createLogger('silent'), metrics });
    const at = Date.UTC(2026, 1, 1);
    for (let i = 0; i < 20_000; i++) writer.enqueueStatusChange({ deviceId: `wave-${i % 10_000}`, status: i < 10_000 ? 'online' : 'offline', previous: null, reason: 'telemetry', lastSeen: at, at: at + i });
    await writer.flush();
    const flushes = (await metrics.registry.getSingleMetric('vigil_writer_flush_seconds')!.get()).values.find((v) => (v as { metricName?: string }).metricName === 'vigil_writer_flush_seconds_count')?.value ?? 0;
    expect(flushes).toBeLessThan(20_000 / 500); // merged: fewer statements than batches
    const stored = resultRows<{ n: number; offline: number }>(
      await database.db.execute(sql`select (select count(*)::int from status_changes) as n, (select count(*)::int from devices where status = 'offline') as offline`),
    )[0]!;
    expect(stored).toEqual({ n: 20_000, offline: 10_000 }); // the newer change of each device won
    await writer.close();
    await database.close();
  });
});

it('names the database that could not be reached', async () => {
  await expect(openDatabase({ url: 'postgres://postgres@127.0.0.1:1/none', dataDir: '/tmp' })).rejects.toThrow(/DATABASE_URL/);
});
