import cron from 'node-cron';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Database } from '../storage/database.js';
import { applyRetention, type RetentionPolicy } from '../storage/retention.js';

/** Runs retention on a cron schedule; a run still going when the next is due is not overlapped. */
export function scheduleRetention(
  database: Database,
  policy: RetentionPolicy,
  schedule: string,
  log: Logger,
  faults: Faults,
  /** Cluster mode: resolves true on the one instance that runs this round (a Redis lease). */
  mayRun: () => Promise<boolean> = async () => true,
): { stop(): void } {
  let running = false;
  const task = cron.schedule(schedule, async () => {
    if (running) return;
    running = true;
    try {
      if (!(await mayRun())) return;
      const started = Date.now();
      const deleted = await applyRetention(database.db, policy);
      log.info({ deleted, ms: Date.now() - started }, 'retention applied');
    } catch (error) {
      faults.report('retention', error, { next: 'runs again at the next schedule' });
    } finally {
      running = false;
    }
  });
  return {
    stop: () => void Promise.resolve(task.stop()).catch(faults.catcher('retention', { op: 'stop' })),
  };
}
