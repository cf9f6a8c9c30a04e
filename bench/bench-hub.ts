import { Faults } from '../src/errors/boundary.js';
import { createLocalFanout } from '../src/fanout/local-fanout.js';
import { Hub } from '../src/hub/hub.js';
import { DEFAULT_HUB_SETTINGS } from '../src/hub/hub-settings.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { createMemoryPresence } from '../src/presence/memory-presence.js';
import type { PresenceStore } from '../src/presence/presence-store.js';
import { discardingSink } from './discarding-sink.js';

/** Scenarios register their whole fleet at once: no bound gets in the way of measuring the hub's own cost. */
const BENCH_DEVICE_LIMITS = { maxDevices: 10_000_000, newPerS: 1e9, burst: 1e9 };

/** A hub in this process with in-process presence, no sockets and no storage: its own cost only. */
export async function createBenchHub(): Promise<{ hub: Hub; presence: PresenceStore }> {
  const metrics = createMetrics();
  const faults = new Faults(createLogger('warn'), metrics);
  const presence = createMemoryPresence({ sweepMs: 1000, faults });
  const hub = new Hub({ ...DEFAULT_HUB_SETTINGS, fanout: createLocalFanout({ windowMs: 120_000, maxBytesPerDevice: 65_536, ttlMs: 300_000, fleetWindowMs: 120_000, fleetMaxBytes: 8 << 20 }), presence, sink: discardingSink, metrics, faults, defaultTimeoutMs: 600_000, deviceLimits: BENCH_DEVICE_LIMITS });
  await presence.start(hub);
  return { hub, presence };
}
