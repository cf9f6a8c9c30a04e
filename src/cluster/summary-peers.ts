import type { SummaryPeers } from '../hub/fleet-summary.js';
import type { Metrics } from '../metrics.js';
import type { RedisBus } from './redis-bus.js';

/**
 * Fleet summaries between instances: one Redis channel every instance subscribes to; each message
 * starts with its sender's id (`id|tick|rows`), so an instance drops its own echo here.
 */
export async function summaryPeers(bus: RedisBus, keyPrefix: string, instanceId: string, metrics: Metrics): Promise<SummaryPeers> {
  const channel = `${keyPrefix}cluster:summary`;
  const echo = `${instanceId}|`;
  let handler: ((message: string) => void) | null = null;
  bus.route(channel, 'fleet_summary', (_suffix, message) => {
    const text = message.toString('utf8');
    if (!text.startsWith(echo)) handler?.(text);
  });
  await bus.subscribe(channel);
  return {
    instanceId,
    // A lost batch (Redis away) is not retried: the next change of each device sends its row again.
    publish: (message) => void bus.publish(channel, message).catch(() => metrics.fleetSummaryPeerBatches.inc({ direction: 'failed' })),
    onMessage: (fn) => {
      handler = fn;
    },
  };
}
