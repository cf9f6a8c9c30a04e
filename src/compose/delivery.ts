import type { Config } from '../config.js';
import type { Faults } from '../errors/boundary.js';
import type { Fanout } from '../fanout/fanout.js';
import { createLocalFanout, historySettings } from '../fanout/local-fanout.js';
import { createRedisFanout } from '../fanout/redis-fanout.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { createMemoryPresence } from '../presence/memory-presence.js';
import type { PresenceStore } from '../presence/presence-store.js';
import { createRedisPresence } from '../presence/redis-presence.js';
import type { ClusterParts } from './cluster.js';

/** Presence: Redis key expiry and a deadline sweep with REDIS_URL, else an in-process deadline heap (docs/presence.md). */
export function createPresence(config: Config, log: Logger, faults: Faults): PresenceStore {
  return config.REDIS_URL
    ? createRedisPresence({ url: config.REDIS_URL, keyPrefix: config.REDIS_KEY_PREFIX, sweepMs: config.PRESENCE_SWEEP_MS, log, faults })
    : createMemoryPresence({ sweepMs: config.PRESENCE_SWEEP_MS, faults });
}

/**
 * The fan-out: in-process on a single instance; in a cluster through Redis, which numbers the fleet
 * feed and keeps the resume history for every instance (docs/scaling.md). Started later, once the
 * WebSocket server that delivers its frames exists.
 */
export function createFanout(config: Config, cluster: ClusterParts | null, log: Logger, metrics: Metrics, faults: Faults): Fanout | Promise<Fanout> {
  const history = historySettings(config, metrics);
  if (cluster === null) return createLocalFanout({ ...history, fault: faults.catcher('fanout', { op: 'history-sweep' }) });
  return createRedisFanout({ ...history, bus: cluster.bus, keyPrefix: config.REDIS_KEY_PREFIX, instanceId: cluster.instanceId, log, metrics, faults });
}
