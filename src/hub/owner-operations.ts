import type { Alert } from '../domain/alert.js';
import type { CommandRequest } from '../domain/command.js';
import { alertData, commandData } from '../domain/representations.js';
import type { Fanout } from '../fanout/fanout.js';
import type { CommandService } from './commands.js';
import type { DeviceEngine } from './device-engine.js';
import type { Insights } from './insights.js';
import type { OwnerAnswer, OwnerQueries } from './owner-queries.js';
import type { SubscriptionService } from './subscription-service.js';

/** A submitted command as the API shows it, and whether this request created it (idempotency). */
export interface SubmittedCommand {
  readonly command: ReturnType<typeof commandData>;
  readonly created: boolean;
}

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
 * The hub's cross-instance operations, all in one place: what it answers (defined by name on the
 * owner queries) and what it asks the owner of a device, or every instance. Without a cluster every
 * question is answered here, by the same code.
 */
export class OwnerOperations {
  constructor(
    private readonly queries: OwnerQueries,
    private readonly local: OwnerLocalParts,
  ) {
    // Answered once this instance's frames up to the snapshot's seq reached Redis and its clients
    // (the Redis fan-out delivers only stored frames): an asker's hold then drops them, none follow.
    this.queries.define('snapshot', async (id) => {
      const frame = this.local.subscriptions.snapshot(id);
      await this.local.fanout.settled();
      return frame;
    });
    this.queries.define('submit-command', (id, body) => {
      const { request, idempotencyKey } = body as { request: CommandRequest; idempotencyKey: string | null };
      return this.submitHere(id, request, idempotencyKey);
    });
    this.queries.define('forget', (_all, id) => {
      this.local.devices.forget(id as string);
      return true;
    });
    this.queries.define('alert-device', (_all, alertId) => this.local.insights.alertDevice(alertId as string));
    this.queries.define('ack-alert', (_all, body) => {
      const { alertId, by } = body as { alertId: string; by: string };
      const alert = this.local.acknowledgeAlert(alertId, by);
      return alert === null ? null : alertData(alert);
    });
  }

  /** The snapshot of a device held by another instance (its owner numbers its frames). */
  ownerSnapshot(deviceId: string): Promise<OwnerAnswer<string>> {
    return this.queries.ask<string>('snapshot', deviceId);
  }

  /**
   * Submits a command. The device's owner sends and tracks it (its acknowledgements reach the owner),
   * so on another instance this asks the owner.
   */
  submitCommand(deviceId: string, request: CommandRequest, idempotencyKey: string | null): SubmittedCommand | Promise<SubmittedCommand | null> {
    if (this.queries.isLocal(deviceId)) return this.submitHere(deviceId, request, idempotencyKey);
    return this.queries.ask<SubmittedCommand>('submit-command', deviceId, { request, idempotencyKey }).then((a) => (a.ok ? a.value : null));
  }

  /** A device deleted by an admin, forgotten by every instance. */
  async forgetEverywhere(id: string): Promise<void> {
    await this.queries.everyone('forget', id);
  }

  /**
   * Acknowledges an alert wherever it is held (the instance owning its device) once `may` allows its
   * device; null: not found. The device is asked for first, so the policy is applied at the entry.
   */
  async acknowledgeAlertAnywhere(alertId: string, by: string, may: (deviceId: string) => boolean): Promise<ReturnType<typeof alertData> | null | 'forbidden'> {
    const found = await this.queries.everyone<string | null>('alert-device', alertId);
    const deviceId = found.answers.find((a) => a !== null);
    if (deviceId === undefined) return null;
    if (!may(deviceId)) return 'forbidden';
    const { answers } = await this.queries.everyone<ReturnType<typeof alertData> | null>('ack-alert', { alertId, by });
    return answers.find((a) => a !== null) ?? null;
  }

  private submitHere(deviceId: string, request: CommandRequest, idempotencyKey: string | null): SubmittedCommand {
    const { command, created } = this.local.commands.submit(deviceId, request, idempotencyKey);
    return { command: commandData(command), created };
  }
}
