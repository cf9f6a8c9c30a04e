import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, expect, it } from 'vitest';
import { Faults } from '../../src/errors/boundary.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { DeliveryLoop } from '../../src/notify/delivery-loop.js';
import { insertOutbox } from '../../src/storage/outbox-repository.js';
import { NotificationPlanner } from '../../src/notify/planner.js';
import type { Sink } from '../../src/notify/sink.js';
import { openDatabase, resultRows, type Database } from '../../src/storage/database.js';
import type { CloudEvent } from '../../src/domain/cloud-event.js';

/*
 * The outbox's dead rows are bounded by NOTIFY_OUTBOX_MAX_ROWS as its pending rows are: a receiver
 * that refuses every event (here: a non-retryable failure, so each row goes dead at its first
 * attempt) cannot grow the table past the bound for the 7 days dead rows are otherwise kept. The
 * oldest go first, counted in vigil_notifications_total{outcome="pruned"}. On the embedded PGlite.
 */
const opened: Database[] = [];
afterAll(async () => {
  for (const d of opened) await d.close();
});

const refusing: Sink = {
  name: 'webhook-1',
  target: 'http://127.0.0.1:1',
  accepts: () => true,
  deliver: () => Promise.resolve({ ok: false, error: 'HTTP 410', retry: false }),
};

const event = (i: number): CloudEvent =>
  ({ specversion: '1.0', id: `e-${i}`, source: 'urn:test', type: 'vigil.alert.raised', subject: `d-${i}`, time: new Date().toISOString(), datacontenttype: 'application/json', data: {} }) as unknown as CloudEvent;

it('keeps at most NOTIFY_OUTBOX_MAX_ROWS dead rows, pruning the oldest and counting them', async () => {
  const database = await openDatabase({ dataDir: mkdtempSync(join(tmpdir(), 'vigil-outbox-')) });
  opened.push(database);
  const log = createLogger('silent');
  const metrics = createMetrics();
  const maxRows = 100;
  const loop = new DeliveryLoop({
    db: database.db,
    sinks: [refusing],
    planner: new NotificationPlanner([refusing], { source: 'urn:test', publicUrl: null }, false, metrics),
    instance: 'test',
    pollMs: 60_000,
    concurrency: 64,
    requestTimeoutMs: 1000,
    maxRows,
    retry: { maxAttempts: 1, maxAgeMs: 86_400_000, baseMs: 10, maxMs: 100 },
    removedSinkGraceMs: 3_600_000,
    legacyNames: new Map(),
    log,
    metrics,
    faults: new Faults(log, metrics),
  });
  const dead = async () => resultRows<{ n: string | number; oldest: string | null }>(await database.db.execute(sql`select count(*) as n, min(id) as oldest from notification_outbox where state = 'dead'`))[0]!;
  // Three times the bound, in rounds of distinct subjects (a subject's rows are delivered in order).
  for (let round = 0; round < 3; round++) {
    await insertOutbox(database.db, Array.from({ length: maxRows }, (_, i) => ({ sink: 'webhook-1', event: event(round * maxRows + i) })));
    for (let t = 0; t < 5; t++) await loop.tick();
  }
  await loop.tick(); // reads the counts, prunes
  expect(Number((await dead()).n)).toBeLessThanOrEqual(maxRows);
  // The newest are kept.
  const kept = resultRows<{ id: string }>(await database.db.execute(sql`select id from notification_outbox where state = 'dead'`)).map((r) => Number(r.id.slice(2)));
  expect(Math.min(...kept)).toBeGreaterThanOrEqual(maxRows * 2);
  const text = await metrics.registry.metrics();
  expect(Number(/vigil_notifications_total\{sink="webhook-1",outcome="pruned"\} (\d+)/.exec(text)?.[1] ?? 0)).toBeGreaterThanOrEqual(maxRows * 2);
  await loop.stop();
}, 60_000);
