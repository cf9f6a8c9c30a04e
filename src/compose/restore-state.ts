import type { Hub } from '../hub/hub.js';
import type { Logger } from '../logger.js';
import { loadActiveAlerts, loadLatestHealth } from '../storage/alert-repository.js';
import { loadPendingCommands } from '../storage/command-repository.js';
import type { Database } from '../storage/database.js';
import { loadDeviceStates } from '../storage/device-repository.js';

/**
 * The registry, active alerts, pending commands and latest scores come back from the database, so
 * the first snapshot after a restart is right; at most MAX_DEVICES devices (the most recently
 * heard), saying so when more are stored.
 */
export async function restoreState(hub: Hub, database: Database, log: Logger): Promise<void> {
  const { maxDevices } = hub.registry.limits;
  const { states, stored: total } = await loadDeviceStates(database.db, maxDevices);
  if (total > maxDevices) {
    log.warn(
      { stored: total, restored: states.length, maxDevices },
      'more devices stored than MAX_DEVICES: the most recently heard were restored, the others are refused until some are deleted or MAX_DEVICES is raised',
    );
  }
  for (const stored of states) if (!hub.registry.restore(stored)) break;
  for (const alert of await loadActiveAlerts(database.db)) hub.insights.restoreAlert(alert);
  for (const command of await loadPendingCommands(database.db)) hub.commands.restore(command);
  for (const [deviceId, health] of await loadLatestHealth(database.db)) hub.insights.restoreHealth(deviceId, health);
}
