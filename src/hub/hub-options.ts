import { DEFAULT_RULE_SET } from '../domain/compiled-rules.js';
import type { EventSink } from '../domain/event-sink.js';
import type { LearnedTimeoutSettings } from '../domain/learned-timeout.js';
import type { Faults } from '../errors/boundary.js';
import type { Fanout } from '../fanout/fanout.js';
import type { Metrics } from '../metrics.js';
import type { PresenceStore } from '../presence/presence-store.js';
import type { DeviceLimits } from './device-registry.js';
import type { InsightOptions } from './insights.js';
import type { MassOfflineOptions } from './mass-offline.js';
import type { ClusterPort } from '../cluster/owner-api/index.js';
import type { Outlets } from './outlets.js';
import type { FlapSettings } from './presence-tracker.js';

/** Not settings: scoring on telemetry at most once a second per device, and no rules until the rule store loads them. */
export const FIXED_INSIGHTS = { minScoreIntervalMs: 1000, rules: DEFAULT_RULE_SET };

/** The health and alert settings (HEALTH_*, ANOMALY_*, OFFLINE_ALERT_MINUTES); tests may also set the fixed two. */
export type InsightSettings = Omit<InsightOptions, 'timeoutMsOf' | keyof typeof FIXED_INSIGHTS> & Partial<Pick<InsightOptions, keyof typeof FIXED_INSIGHTS>>;

/** Every setting comes from the caller (config/options.ts maps the config); tests use hub-settings.ts. */
export interface HubOptions {
  readonly fanout: Fanout;
  readonly presence: PresenceStore;
  readonly sink: EventSink;
  readonly metrics: Metrics;
  /** Where faults of work nobody awaits (presence claims, timers, reconciles) are reported. */
  readonly faults: Faults;
  readonly defaultTimeoutMs: number;
  /** Offline timeouts by device type, in ms (a device's own override wins). */
  readonly typeTimeoutsMs?: ReadonlyMap<string, number>;
  /** LEARNED_TIMEOUTS: each device's timeout learned from its reporting intervals (null: off). */
  readonly learnedTimeouts?: LearnedTimeoutSettings | null;
  /** A device with `transitions` status changes within `windowMs` is flagged as flapping. */
  readonly flap: FlapSettings;
  readonly insights: InsightSettings;
  readonly now?: () => number;
  /** Cluster mode: who owns each device (it numbers and publishes its frames) and how to ask it. */
  readonly cluster?: ClusterPort;
  /** An offline wave at least this large, and this share of the devices online, is one incident. */
  readonly massOffline: MassOfflineOptions;
  /** What the hub sends over MQTT (commands, availability); absent: nothing is sent. */
  readonly outlets?: Partial<Outlets>;
  /** How many devices the registry holds and how fast new ones are admitted (MAX_DEVICES, MAX_NEW_DEVICES_*). */
  readonly deviceLimits: DeviceLimits;
}

/** The hub's settings: everything in HubOptions that comes from the configuration (config/options.ts maps it). */
export type HubSettings = Pick<HubOptions, 'defaultTimeoutMs' | 'typeTimeoutsMs' | 'learnedTimeouts' | 'deviceLimits' | 'flap' | 'massOffline' | 'insights'>;
