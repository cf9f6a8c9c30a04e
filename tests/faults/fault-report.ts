import { appendFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One row of the fault table `npm run test:faults` prints (README "What Vigil survives"). */
export interface FaultRow {
  readonly fault: string;
  /** Messages the broker acknowledged to the publisher. */
  readonly accepted?: number;
  readonly stored?: number;
  readonly duplicates?: number;
  /** Messages pushed to WebSocket clients, where the case counts them. */
  readonly pushed?: number;
  readonly transitionsExpected?: number;
  readonly transitionsSeen?: number;
  /** From the fault ending to the hub serving normally again. */
  readonly recoveryMs?: number;
  readonly note?: string;
}

export const FAULT_REPORT = fileURLToPath(new URL('../artifacts/faults.jsonl', import.meta.url));

export function recordFault(row: FaultRow): void {
  mkdirSync(new URL('../artifacts/', import.meta.url), { recursive: true });
  appendFileSync(FAULT_REPORT, `${JSON.stringify(row)}\n`);
  process.stdout.write(`fault: ${JSON.stringify(row)}\n`);
}
