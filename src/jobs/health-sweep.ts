import cron from 'node-cron';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../logger.js';

/**
 * The periodic health sweep (seed: every 5 minutes, HEALTH_SWEEP_CRON) re-scores every device, so
 * a device that went quiet loses freshness points without sending anything; a short interval raises
 * offline alerts on time.
 */
export function scheduleHealthSweeps(hub: Hub, schedule: string, offlineCheckMs: number, log: Logger): { stop(): void } {
  const task = cron.schedule(schedule, () => {
    const started = Date.now();
    hub.sweep();
    log.debug({ devices: hub.registry.size, ms: Date.now() - started }, 'health sweep');
  });
  const offline = setInterval(() => hub.sweepOffline(), offlineCheckMs);
  offline.unref();
  return {
    stop() {
      void task.stop();
      clearInterval(offline);
    },
  };
}
