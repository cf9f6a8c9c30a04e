import type { HubOwnerApi, OwnerAnswer, SubmittedCommand } from '../cluster/owner-api/index.js';
import type { Alert } from '../domain/alert.js';
import type { CommandRequest } from '../domain/command.js';
import { alertData, commandData } from '../domain/representations.js';
import type { Fanout } from '../fanout/fanout.js';
import type { CommandService } from './commands.js';
import type { DeviceEngine } from './device-engine.js';
import type { Insights } from './insights.js';
import type { SubscriptionService } from './subscription-service.js';

export type { SubmittedCommand } from '../cluster/owner-api/index.js';

/** What this instance answers for the devices it holds. */
export interface OwnerLocalParts {
  readonly fanout: Pick<Fanout, 'settled'>;
  readonly subscriptions: Pick<SubscriptionService, 'snapshot'>;
  readonly commands: Pick<CommandService, 'submit'>;
  readonly devices: Pick<DeviceEngine, 'forget'>;
  readonly insights: Pick<Insights, 'alertDevice'>;
  readonly acknowledgeAlert: (alertId: string, by: string) => Alert | null;
}

/**
 * The hub's side of the owner API (src/cluster/owner-api/operations.ts lists every operation): what
 * it answers about the devices it owns, or for calls to every instance about its own part, and what
 * it asks the owner of a device or every instance. Without a cluster every call runs here.
 */
export class OwnerOperations {
  constructor(
    private readonly owner: HubOwnerApi,
    private readonly local: OwnerLocalParts,
  ) {
    owner.serve({
      // Answered once this instance's frames up to the snapshot's seq reached Redis and its clients
      // (the Redis fan-out delivers only stored frames): an asker's hold then drops them, none follow.
      snapshot: async (deviceId) => {
        const frame = local.subscriptions.snapshot(deviceId);
        await local.fanout.settled();
        return frame;
      },
      submitCommand: (deviceId, { request, idempotencyKey }) => this.submitHere(deviceId, request, idempotencyKey),
      forget: (_all, deviceId) => {
        local.devices.forget(deviceId);
        return true;
      },
      alertDevice: (_all, alertId) => local.insights.alertDevice(alertId),
      ackAlert: (_all, { alertId, by }) => {
        const alert = local.acknowledgeAlert(alertId, by);
        return alert === null ? null : alertData(alert);
      },
    });
  }

  /** The snapshot of a device held by another instance (its owner numbers its frames). */
  ownerSnapshot(deviceId: string): Promise<OwnerAnswer<string>> {
    return this.owner.snapshot(deviceId);
  }

  /**
   * Submits a command. The device's owner sends and tracks it (its acknowledgements reach the owner),
   * so on another instance this asks the owner.
   */
  submitCommand(deviceId: string, request: CommandRequest, idempotencyKey: string | null): SubmittedCommand | Promise<SubmittedCommand | null> {
    if (this.owner.isLocal(deviceId)) return this.submitHere(deviceId, request, idempotencyKey);
    return this.owner.submitCommand(deviceId, request, idempotencyKey).then((a) => (a.ok ? a.value : null));
  }

  /** A device deleted by an admin, forgotten by every instance. */
  async forgetEverywhere(id: string): Promise<void> {
    await this.owner.forget(id);
  }

  /**
   * Acknowledges an alert wherever it is held (the instance owning its device) once `may` allows its
   * device; null: not found. The device is asked for first, so the policy is applied at the entry.
   */
  async acknowledgeAlertAnywhere(alertId: string, by: string, may: (deviceId: string) => boolean): Promise<ReturnType<typeof alertData> | null | 'forbidden'> {
    const found = await this.owner.alertDevice(alertId);
    const deviceId = found.answers.find((a) => a !== null);
    if (deviceId === undefined) return null;
    if (!may(deviceId)) return 'forbidden';
    const { answers } = await this.owner.ackAlert(alertId, by);
    return answers.find((a) => a !== null) ?? null;
  }

  private submitHere(deviceId: string, request: CommandRequest, idempotencyKey: string | null): SubmittedCommand {
    const { command, created } = this.local.commands.submit(deviceId, request, idempotencyKey);
    return { command: commandData(command), created };
  }
}
