import { existsSync, readFileSync } from 'node:fs';
import { FAULT_REPORT, type FaultRow } from './fault-report.js';

// Prints what the fault suite recorded: one line per case, in the order they ran.
if (!existsSync(FAULT_REPORT)) {
  process.stdout.write('no fault results recorded (did the suite run?)\n');
  process.exit(0);
}
const rows = readFileSync(FAULT_REPORT, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as FaultRow);
const cell = (v: number | string | undefined) => (v === undefined ? '–' : typeof v === 'number' ? v.toLocaleString('en-US') : v);
const table = [
  ['fault', 'accepted', 'stored', 'dup', 'pushed', 'transitions exp/seen', 'recovery ms', 'note'],
  ...rows.map((r) => [
    r.fault,
    cell(r.accepted),
    cell(r.stored),
    cell(r.duplicates),
    cell(r.pushed),
    r.transitionsExpected === undefined ? '–' : `${r.transitionsExpected}/${r.transitionsSeen}`,
    cell(r.recoveryMs),
    r.note ?? '',
  ]),
];
const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
for (const row of table) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
