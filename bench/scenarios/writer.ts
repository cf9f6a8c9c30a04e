import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import type { Telemetry } from '../../src/domain/telemetry.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { createWriter } from '../../src/storage/writer.js';
import type { Figure } from '../report.js';

/** Rows per second through the batched writer, with the event-loop delay the writing causes. */
async function measure(database: Database, rows: number, label: string): Promise<Figure[]> {
  const writer = createWriter(database, { batchRows: 1000, flushMs: 50, maxQueue: 1_000_000, deviceRefreshMs: 1000, log: createLogger('silent'), metrics: createMetrics() });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const base = Date.now() - 86_400_000;
  const started = performance.now();
  delay.enable();
  // Enqueue in slices as an ingest loop would, yielding between them.
  for (let i = 0; i < rows; ) {
    for (const end = Math.min(rows, i + 5000); i < end; i++) {
      const t: Telemetry = { deviceId: `dev-${i % 1000}`, ts: base + i, receivedAt: base + i, batteryLevel: 80, rssi: -60, responseTimeMs: 120, errorRate: 0.01, metrics: { temperature: 21.5 } };
      writer.enqueueTelemetry(t);
    }
    await new Promise((r) => setImmediate(r));
  }
  await writer.flush();
  delay.disable();
  const seconds = (performance.now() - started) / 1000;
  await writer.close();
  return [
    { scenario: 'writer', metric: `rows/s into ${label}`, value: rows / seconds, unit: 'rows/s', note: `${rows} telemetry rows, multi-row insert via json_to_recordset` },
    { scenario: 'writer', metric: `event-loop delay p99 (${label})`, value: delay.percentile(99) / 1e6, unit: 'ms', note: `max ${(delay.max / 1e6).toFixed(1)} ms` },
  ];
}

export async function writerScenario(adminUrl: string): Promise<Figure[]> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });
  const name = `vigil_bench_${Date.now()}`;
  await admin.unsafe(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const figures: Figure[] = [];
  try {
    const pg = await openDatabase({ url: url.toString(), dataDir: '/nonexistent' });
    figures.push(...(await measure(pg, 200_000, 'PostgreSQL')));
    await pg.close();
    const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-'));
    const lite = await openDatabase({ dataDir: dir });
    figures.push(...(await measure(lite, 20_000, 'PGlite')));
    await lite.close();
    rmSync(dir, { recursive: true, force: true });
  } finally {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
  return figures;
}
