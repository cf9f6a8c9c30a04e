import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { redactUrlsIn } from '../redact-url.js';

/**
 * Where a fault was caught: each entry of work into the hub (a request, a message, a timer) has its
 * own boundary, and each is one value of the `entry` label of `vigil_internal_errors_total`.
 */
export type Entry =
  | 'http'
  | 'ws'
  | 'mqtt'
  | 'cluster'
  | 'fanout'
  | 'presence'
  | 'health_sweep'
  | 'offline_check'
  | 'retention'
  | 'commands'
  | 'membership'
  | 'lag_monitor'
  | 'key_reload'
  | 'rule_reload'
  | 'reconcile'
  | 'notifications'
  | 'fleet_summary'
  | 'process';

/** Per entry, at most one log line this often; the line says how many faults went unlogged since. */
const LOG_INTERVAL_MS = 10_000;

/** A fault as a log line shows it: no driver-held secret (URL passwords) in the message or the stack. */
export function describeFault(error: unknown): { type: string; message: string; stack?: string } {
  if (!(error instanceof Error)) return { type: typeof error, message: redactUrlsIn(String(error)) };
  return { type: error.name, message: redactUrlsIn(error.message), ...(error.stack ? { stack: redactUrlsIn(error.stack) } : {}) };
}

/**
 * The hub's error boundaries. A fault caught at an entry is counted, logged (rate-limited per entry,
 * so a fault on a hot path does not flood the log) and never rethrown: one bad message, request or
 * timer tick must not stop the others, and nothing but a signal ends the process. Each entry's own
 * answer to its caller (a 500, an error frame, an error reply on the cluster bus) is made there.
 */
export class Faults {
  private readonly logged = new Map<Entry, { at: number; unlogged: number }>();

  constructor(
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts and (rate-limited) logs a fault caught at `entry`; never throws. */
  report(entry: Entry, error: unknown, context: Readonly<Record<string, unknown>> = {}): void {
    try {
      this.metrics.internalErrors.inc({ entry });
      const at = this.now();
      const last = this.logged.get(entry);
      if (last !== undefined && at - last.at < LOG_INTERVAL_MS) {
        last.unlogged++;
        return;
      }
      this.logged.set(entry, { at, unlogged: 0 });
      const unlogged = last?.unlogged ?? 0;
      this.log.error(
        { entry, ...context, err: describeFault(error), ...(unlogged > 0 ? { unlogged } : {}) },
        `internal error in ${entry}: caught at its boundary, the hub goes on (logged at most every ${LOG_INTERVAL_MS / 1000} s per entry)`,
      );
    } catch {
      // Reporting must not become the fault that ends the process (a closed log stream, say).
    }
  }

  /** For a promise nobody awaits: `promise.catch(faults.catcher('reconcile'))`. */
  catcher(entry: Entry, context?: Readonly<Record<string, unknown>>): (error: unknown) => void {
    return (error) => this.report(entry, error, context);
  }

  /** A callback (a timer tick, an event handler) that reports instead of throwing. */
  guard(entry: Entry, fn: () => unknown): () => void {
    const onRejected = this.catcher(entry); // once, not per tick
    return () => {
      try {
        const result = fn();
        if (result instanceof Promise) result.catch(onRejected);
      } catch (error) {
        this.report(entry, error);
      }
    };
  }
}

/**
 * A fault another part (another hub instance) reported as internal: callers answer it as an internal
 * error (500, error frame `internal`), never as "unavailable", which means a dependency is away.
 */
export class InternalFault extends Error {
  override readonly name = 'InternalFault';
}
