import type { Config } from '../config.js';
import type { Faults } from '../errors/boundary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Lifecycle } from './lifecycle.js';

/** What every part's factory is given: the settings, where its stop goes, and the shared observability. */
export interface StartContext {
  readonly config: Config;
  readonly life: Lifecycle;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly faults: Faults;
}
