import cron from 'node-cron';
import type { Faults } from '../errors/boundary.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../logger.js';

/**
 * The periodic health sweep (seed: every 5 minutes, HEALTH_SWEEP_CRON) re-scores every device, so
 * a device that went quiet loses freshness points without sending anything; a short interval raises
 * offline alerts on time. A failing round is reported and the next one runs as scheduled.
 */
/** All a sweep needs of the hub. */
export type SweptHub = Pick<Hub, 'sweep' | 'sweepOffline'> & { readonly registry: Pick<Hub['registry'], 'size'> };

export function scheduleHealthSweeps(hub: SweptHub, schedule: string, offlineCheckMs: number, log: Logger, faults: Faults): { stop(): void } {
  const task = cron.schedule(
    schedule,
    faults.guard('health_sweep', () => {
      const started = Date.now();
      hub.sweep();
      log.debug({ devices: hub.registry.size, ms: Date.now() - started }, 'health sweep');
    }),
  );
  const offline = setInterval(
    faults.guard('offline_check', () => hub.sweepOffline()),
    offlineCheckMs,
  );
  offline.unref();
  return {
    stop() {
      void Promise.resolve(task.stop()).catch(faults.catcher('health_sweep', { op: 'stop' }));
      clearInterval(offline);
    },
  };
}
