import { ALL_CHANNEL } from '../hub/frame-publisher.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../logger.js';
import { loadActiveAlerts, loadLatestHealth } from '../storage/alert-repository.js';
import { loadPendingCommands } from '../storage/command-repository.js';
import type { Database } from '../storage/database.js';
import { loadDeviceStates } from '../storage/device-repository.js';

/**
 * The registry, active alerts, pending commands and latest scores come back from the database, so
 * the first snapshot after a restart is right; at most MAX_DEVICES devices (the most recently
 * heard), saying so when more are stored. `alone`: no other instance is running (one instance, or
 * the first live member of a cluster).
 */
export async function restoreState(hub: Hub, database: Database, log: Logger, alone: boolean): Promise<void> {
  const { maxDevices } = hub.registry.limits;
  const { states, stored: total } = await loadDeviceStates(database.db, maxDevices);
  if (total > maxDevices) {
    log.warn(
      { stored: total, restored: states.length, maxDevices },
      'more devices stored than MAX_DEVICES: the most recently heard were restored, the others are refused until some are deleted or MAX_DEVICES is raised',
    );
  }
  for (const stored of states) if (!hub.registry.restore(stored)) break;
  for (const alert of await loadActiveAlerts(database.db)) {
    // A fleet incident is the presence tracker's (mass-offline.ts): ended or adopted, never left open.
    if (alert.deviceId === ALL_CHANNEL && alert.type === 'mass_offline') hub.presence.restoreIncident(alert, alone);
    else hub.insights.restoreAlert(alert);
  }
  for (const command of await loadPendingCommands(database.db)) hub.commands.restore(command);
  for (const [deviceId, health] of await loadLatestHealth(database.db)) hub.insights.restoreHealth(deviceId, health);
}
