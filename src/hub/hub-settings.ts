import { configSchema, hubSettings } from '../config.js';
import type { HubSettings } from './hub-options.js';

export type { HubSettings } from './hub-options.js';

/**
 * For hubs built without a configuration (unit tests, the benchmarks): the defaults of
 * src/config/schema.ts, the one place they are written, as a hub started with no settings would have them.
 */
export const DEFAULT_HUB_SETTINGS: HubSettings = hubSettings(configSchema.parse({}));
