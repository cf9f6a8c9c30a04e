/**
 * Where a device's hub heap goes, by object kind (constructor or V8 type), self size per device:
 *  - `node --expose-gc --import tsx bench/heap-breakdown.ts [devices]`: an in-process hub
 *    (bench-hub.ts) takes one message from each of N devices, snapshots before and after;
 *  - `… bench/heap-breakdown.ts --compare before.heapsnapshot after.heapsnapshot devices`: two
 *    snapshots of a real hub, such as those `FLEET_SNAPSHOTS=dir npm run bench -- --only fleet` writes
 *    (give node `--max-old-space-size=8000` for large ones).
 */
import { writeHeapSnapshot } from 'node:v8';
import { readFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBenchHub } from './bench-hub.js';

interface Snapshot { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] }

function bySelfSize(file: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length, typeAt = fields.indexOf('type'), nameAt = fields.indexOf('name'), sizeAt = fields.indexOf('self_size');
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const name = type === 'object' || type === 'closure' || type === 'native' ? snap.strings[snap.nodes[i + nameAt]!]! : `(${type})`;
    const key = `${type}:${name}`.slice(0, 80);
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++; e.bytes += snap.nodes[i + sizeAt]!;
    out.set(key, e);
  }
  return out;
}

function printDiff(beforeFile: string, afterFile: string, devices: number): void {
  const a = bySelfSize(beforeFile), b = bySelfSize(afterFile);
  const rows = [...b].map(([k, v]) => ({ k, count: (v.count - (a.get(k)?.count ?? 0)) / devices, bytes: (v.bytes - (a.get(k)?.bytes ?? 0)) / devices }))
    .filter((r) => Math.abs(r.bytes) >= 4).sort((x, y) => y.bytes - x.bytes);
  for (const r of rows.slice(0, 40)) console.log(`${r.bytes.toFixed(1).padStart(8)} B ${r.count.toFixed(2).padStart(6)} objs  ${r.k}`);
}

if (process.argv[2] === '--compare') {
  printDiff(process.argv[3]!, process.argv[4]!, Number(process.argv[5]));
  process.exit(0);
}
const devices = Number(process.argv[2] ?? 20_000);
const gc = (globalThis as { gc?: () => void }).gc!;
const { hub, presence } = await createBenchHub();
gc();
const before = join(tmpdir(), `vigil-heap-before-${process.pid}.heapsnapshot`);
writeHeapSnapshot(before);
const heapBefore = process.memoryUsage().heapUsed;
const now = Date.now();
for (let i = 0; i < devices; i++) {
  hub.ingestTelemetry({ deviceId: `device-${i}`, ts: now, receivedAt: now, batteryLevel: 80, rssi: -60, responseTimeMs: 120, errorRate: 0.01, metrics: { temperature: 21.5, humidity: 40 } });
}
await new Promise((r) => setTimeout(r, 200));
gc();
const heapAfter = process.memoryUsage().heapUsed;
const after = join(tmpdir(), `vigil-heap-after-${process.pid}.heapsnapshot`);
writeHeapSnapshot(after);
console.log(`heapUsed per device: ${((heapAfter - heapBefore) / devices).toFixed(0)} B over ${devices} devices`);
printDiff(before, after, devices);
unlinkSync(before); unlinkSync(after);
await presence.stop();
process.exit(0);
