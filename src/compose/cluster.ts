import { hostname } from 'node:os';
import { Cluster } from '../cluster/cluster.js';
import { Membership } from '../cluster/membership.js';
import { RedisBus } from '../cluster/redis-bus.js';
import type { Config } from '../config.js';
import type { StartContext } from './context.js';

/** Cluster mode's shared parts: the Redis connections, the live members, and calls between instances. */
export interface ClusterParts {
  readonly instanceId: string;
  readonly bus: RedisBus;
  readonly membership: Membership;
  readonly cluster: Cluster;
}

/** CLUSTER_INSTANCE_ID, or the host name made safe for keys and topics. */
export function instanceIdOf(config: Config): string | null {
  if (!config.CLUSTER_ENABLED) return null;
  return config.CLUSTER_INSTANCE_ID ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64);
}

/**
 * Cluster mode (CLUSTER_ENABLED): instances share Redis (membership, fan-out, history) and read
 * every device topic, each handling its own devices (docs/scaling.md). Null when single-instance.
 */
export async function joinCluster({ config, life, log, metrics, faults }: StartContext): Promise<ClusterParts | null> {
  const instanceId = instanceIdOf(config);
  metrics.clusterMembers.set(1); // a single instance sees itself; cluster mode counts the live members
  if (instanceId === null) return null;
  const bus = new RedisBus(config.REDIS_URL!, log, faults);
  life.onStop(() => bus.close());
  await bus.connect();
  const membership = new Membership({ redis: bus.commands, keyPrefix: config.REDIS_KEY_PREFIX, instanceId, heartbeatMs: 1000, leaseMs: 3000, log, faults });
  membership.onChange(() => metrics.clusterMembers.set(membership.list.length));
  life.onStop(() => membership.stop());
  await membership.start();
  metrics.clusterMembers.set(membership.list.length);
  const cluster = new Cluster({ bus, membership, instanceId, keyPrefix: config.REDIS_KEY_PREFIX, log, metrics, faults });
  return { instanceId, bus, membership, cluster };
}
