import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Membership } from './membership.js';
import type { RedisBus } from './redis-bus.js';

/** What every cluster component of one instance shares: the Redis connections, the live members, its id and key prefix. */
export interface InstanceContext {
  readonly bus: RedisBus;
  readonly membership: Membership;
  readonly instanceId: string;
  readonly keyPrefix: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly faults: Faults;
}
