/**
 * PostgreSQL's side of a fleet-wide wave: rows a second for status changes, device-row refreshes and
 * telemetry, in batches of 500 to 5,000, against a fleet of N devices seeded into a scratch database
 * `wavebench` (dropped and made anew; pass `keep` as the second argument to reuse it). Not part of
 * `npm run bench`: `node --import tsx bench/wave-writes.ts 1000000` (docs/performance.md, #21).
 */
import postgres from 'postgres';
import { openDatabase } from '../src/storage/database.js';
import { insertStatusChanges, upsertDevicesSeen, insertTelemetry } from '../src/storage/batch-inserts.js';
import { seedFleet } from './load/seed-fleet.js';
import type { StatusChange } from '../src/domain/device-status.js';
import type { Telemetry } from '../src/domain/telemetry.js';

const DEVICES = Number(process.argv[2] ?? 1_000_000);
const admin = postgres('postgres://postgres@127.0.0.1:5432/postgres', { max: 1, onnotice: () => undefined });
const url = 'postgres://postgres@127.0.0.1:5432/wavebench';
if (process.argv[3] !== 'keep') {
  await admin.unsafe('drop database if exists wavebench');
  await admin.unsafe('create database wavebench');
}
await admin.end();
const database = await openDatabase({ url, dataDir: '/tmp/unused' });
if (process.argv[3] !== 'keep') console.log('seeded', await seedFleet(url, DEVICES, Date.now() - 60_000, 'offline'));
let next = 0;
const at = Date.now();
const change = (): StatusChange => {
  const i = (next = (next + 7919) % DEVICES);
  return { deviceId: `bench-${i}`, status: 'online', previous: 'offline', reason: 'heartbeat', lastSeen: at, at: at + next } as StatusChange;
};
const reading = (): Telemetry => {
  const i = (next = (next + 7919) % DEVICES);
  return { deviceId: `bench-${i}`, ts: at + i, receivedAt: at + i, batteryLevel: 50, rssi: -70, responseTimeMs: 120, errorRate: 0.01, metrics: { temperature: 21.5 } } as unknown as Telemetry;
};
async function time(label: string, total: number, batch: number, make: () => unknown, write: (rows: never[]) => Promise<void>) {
  const started = performance.now();
  for (let done = 0; done < total; done += batch) await write(Array.from({ length: batch }, make) as never[]);
  const s = (performance.now() - started) / 1000;
  console.log(`${label} batch ${batch}: ${Math.round(total / s)} rows/s (${((s / (total / batch)) * 1000).toFixed(1)} ms a batch)`);
}
for (let round = 0; round < 2; round++) {
  for (const batch of [500, 2000, 5000]) await time('status changes', 20_000, batch, change, (rows) => insertStatusChanges(database.db, rows));
  for (const batch of [500, 2000, 5000]) await time('devices seen', 20_000, batch, reading, (rows) => upsertDevicesSeen(database.db, rows));
  for (const batch of [500, 5000]) await time('telemetry', 20_000, batch, reading, (rows) => insertTelemetry(database.db, rows));
}
await database.close();
if (process.argv[3] !== 'keep') {
  const cleanup = postgres('postgres://postgres@127.0.0.1:5432/postgres', { max: 1, onnotice: () => undefined });
  await cleanup.unsafe('drop database if exists wavebench with (force)');
  await cleanup.end();
}
