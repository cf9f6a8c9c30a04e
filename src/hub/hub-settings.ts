import { configSchema, healthWeights, typeTimeouts, type Config } from '../config.js';
import { learnedTimeoutSettings } from '../domain/learned-timeout.js';
import type { HubOptions } from './hub-options.js';

/** The hub's settings: everything in HubOptions that comes from the configuration. */
export type HubSettings = Pick<HubOptions, 'defaultTimeoutMs' | 'typeTimeoutsMs' | 'learnedTimeouts' | 'deviceLimits' | 'flap' | 'massOffline' | 'insights'>;

/** The configuration's hub settings, in the hub's units (ms, shares, lists). */
export function hubSettings(config: Config): HubSettings {
  return {
    defaultTimeoutMs: config.OFFLINE_TIMEOUT_S * 1000,
    typeTimeoutsMs: typeTimeouts(config),
    learnedTimeouts: learnedTimeoutSettings(config),
    deviceLimits: { maxDevices: config.MAX_DEVICES, newPerS: config.MAX_NEW_DEVICES_PER_S, burst: config.MAX_NEW_DEVICES_BURST },
    flap: { transitions: config.FLAP_TRANSITIONS, windowMs: config.FLAP_WINDOW_S * 1000 },
    massOffline: { minDevices: config.MASS_OFFLINE_MIN_DEVICES, share: config.MASS_OFFLINE_SHARE, windowMs: config.MASS_OFFLINE_WINDOW_S * 1000 },
    insights: {
      weights: healthWeights(config),
      step: config.HEALTH_STEP,
      zscoreMetrics: config.ANOMALY_ZSCORE_METRICS?.split(',') ?? [],
      zscoreThreshold: config.ANOMALY_ZSCORE,
      offlineAlertMs: config.OFFLINE_ALERT_MINUTES * 60_000,
    },
  };
}

/**
 * For hubs built without a configuration (unit tests, the benchmarks): the defaults of
 * src/config.ts, the one place they are written, as a hub started with no settings would have them.
 */
export const DEFAULT_HUB_SETTINGS: HubSettings = hubSettings(configSchema.parse({}));
