import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { DeviceRegistry, Refusal } from './device-registry.js';

/** Refusals are reported in the log at most this often (every one is counted in /metrics). */
const REPORT_INTERVAL_MS = 60_000;

/**
 * Puts the registry's size, online and offline counts and refusals into /metrics (read before each scrape, so the hot path
 * keeps plain numbers) and says in the log, at most once a minute, that new devices are being
 * refused and why. Returns the function that stops the reporting.
 */
export function watchDeviceBounds(registry: DeviceRegistry, metrics: Metrics, log: Logger): () => void {
  metrics.devicesMax.set(registry.limits.maxDevices);
  const counted: Record<Refusal, number> = { device_limit: 0, new_device_rate: 0 };
  const collect = () => {
    const totals = registry.totals();
    metrics.devicesKnown.set(totals.total);
    metrics.devicesOnline.set(totals.online);
    metrics.devicesOffline.set(totals.offline);
    for (const reason of ['device_limit', 'new_device_rate'] as const) {
      const delta = registry.refused[reason] - counted[reason];
      if (delta > 0) metrics.devicesRefused.inc({ reason }, delta);
      counted[reason] = registry.refused[reason];
    }
  };
  metrics.beforeCollect(collect);
  collect();

  const reported: Record<Refusal, number> = { ...registry.refused };
  const timer = setInterval(() => {
    const since = { device_limit: registry.refused.device_limit - reported.device_limit, new_device_rate: registry.refused.new_device_rate - reported.new_device_rate };
    if (since.device_limit === 0 && since.new_device_rate === 0) return;
    Object.assign(reported, registry.refused);
    log.warn(
      { refused: since, known: registry.size, ...registry.limits },
      'messages of new devices refused in the last minute (device_limit: MAX_DEVICES reached; new_device_rate: over MAX_NEW_DEVICES_PER_S)',
    );
  }, REPORT_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
