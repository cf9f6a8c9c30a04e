import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

export interface Figure {
  readonly scenario: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  readonly note?: string;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function printTable(figures: readonly Figure[]): void {
  const rows = figures.map((f) => [f.scenario, f.metric, formatValue(f.value), f.unit, f.note ?? '']);
  const widths = [0, 1, 2, 3, 4].map((i) => Math.max(...rows.map((r) => r[i]!.length), 6));
  const line = (cells: string[]) => cells.map((c, i) => (i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write(`${line(['scenario', 'metric', 'value', 'unit', 'note'])}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}

function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(2);
}

/** Writes the run to bench/results/<timestamp>.json with the machine it ran on. */
export function saveResults(figures: readonly Figure[]): string {
  return saveNamedResult('', { figures });
}

/** Writes bench/results/<name->timestamp>.json: the body plus when and on which machine it ran. */
export function saveNamedResult(name: string, body: Record<string, unknown>): string {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = new URL(`${name ? `${name}-` : ''}${stamp}.json`, dir);
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), machine, ...body }, null, 2)}\n`);
  return file.pathname;
}
