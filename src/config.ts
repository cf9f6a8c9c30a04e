/**
 * The hub's configuration (src/config/): the schema of every setting, how it is read from the
 * environment and flags, and the mappers from settings to each part's options.
 */
export { ConfigError } from './config/config-error.js';
export { isSecretSetting, loadConfig, parseFlags } from './config/load.js';
export * from './config/options.js';
export { configSchema, type Config, type ConfigKey } from './config/schema.js';
