import type { OwnerHandlers } from '../cluster/owner-api/index.js';
import { alertData, commandData } from '../domain/representations.js';
import type { Fanout } from '../fanout/fanout.js';
import type { Hub } from './hub.js';

type HubOperation = 'snapshot' | 'submitCommand' | 'forget' | 'alertDevice' | 'ackAlert';

/**
 * The hub's own answers to the owner API (src/cluster/owner-api/operations.ts): what this instance
 * says when asked about the devices it owns, or, for calls to every instance, about its own part.
 */
export function hubOperations(hub: Hub, fanout: Pick<Fanout, 'settled'>): Pick<OwnerHandlers, HubOperation> {
  return {
    // Answered once this instance's frames up to the snapshot's seq reached Redis and its clients
    // (the Redis fan-out delivers only stored frames): an asker's hold then drops them, none follow.
    snapshot: async (deviceId) => {
      const frame = hub.snapshot(deviceId);
      await fanout.settled();
      return frame;
    },
    submitCommand: (deviceId, { request, idempotencyKey }) => {
      const { command, created } = hub.commands.submit(deviceId, request, idempotencyKey);
      return { command: commandData(command), created };
    },
    forget: (_all, deviceId) => {
      hub.forget(deviceId);
      return true;
    },
    alertDevice: (_all, alertId) => hub.insights.alertDevice(alertId),
    ackAlert: (_all, { alertId, by }) => {
      const alert = hub.acknowledgeAlert(alertId, by);
      return alert === null ? null : alertData(alert);
    },
  };
}
