export * from './alerts.js';
export * from './api-keys.js';
export * from './commands.js';
export * from './dead-letters.js';
export * from './devices.js';
export * from './health-scores.js';
export * from './status-changes.js';
export * from './telemetry.js';
