import type { CommandRequest } from '../../domain/command.js';
import type { DeviceSettings } from '../../hub/device-views.js';
import type { AnswerOf, FleetAnswers, FleetOperation, OwnerAnswer, OwnerApi, OwnerOperation, RequestOf } from './operations.js';
import type { OwnerServices } from './services.js';

/**
 * The OwnerApi's typed methods, each a call of one operation: how a call reaches the owner (or
 * every instance) is the subclass's (local.ts, proxy.ts).
 */
export abstract class TypedOwnerCalls implements OwnerApi {
  constructor(readonly services: OwnerServices) {}

  /** Hands over this instance's answers to some operations (see OwnerServices.serve). */
  serve(part: Parameters<OwnerServices['serve']>[0]): void {
    this.services.serve(part);
  }

  /** The answering side, for the cluster's request channel: another instance asks `wire` about `deviceId` (null: not answered). */
  abstract answer(wire: string, deviceId: string, body: unknown): Promise<string | null>;
  abstract isLocal(deviceId: string): boolean;
  abstract byOwner(ids: readonly string[]): { local: string[]; remote: string[][] };
  protected abstract toOwner<K extends OwnerOperation>(op: K, deviceId: string, body: RequestOf<K>): Promise<OwnerAnswer<AnswerOf<K>>>;
  protected abstract toAll<K extends FleetOperation>(op: K, body: RequestOf<K>): Promise<FleetAnswers<AnswerOf<K>>>;

  snapshot(deviceId: string) {
    return this.toOwner('snapshot', deviceId, undefined);
  }

  submitCommand(deviceId: string, request: CommandRequest, idempotencyKey: string | null) {
    return this.toOwner('submitCommand', deviceId, { request, idempotencyKey });
  }

  heldCommands(deviceId: string) {
    return this.toOwner('heldCommands', deviceId, undefined);
  }

  views(ids: readonly string[]) {
    return this.toOwner('views', ids[0]!, [...ids]);
  }

  applySettings(deviceId: string, settings: DeviceSettings) {
    return this.toOwner('applySettings', deviceId, settings);
  }

  metricsSummary(deviceId: string) {
    return this.toOwner('metricsSummary', deviceId, undefined);
  }

  health(deviceId: string) {
    return this.toOwner('health', deviceId, undefined);
  }

  ingestStatus(deviceId: string, body: RequestOf<'ingestStatus'>['body'], receivedAt: number) {
    return this.toOwner('ingestStatus', deviceId, { body, receivedAt });
  }

  forget(deviceId: string) {
    return this.toAll('forget', deviceId);
  }

  alertDevice(alertId: string) {
    return this.toAll('alertDevice', alertId);
  }

  ackAlert(alertId: string, by: string) {
    return this.toAll('ackAlert', { alertId, by });
  }

  reloadRules(version: number) {
    return this.toAll('reloadRules', version);
  }

  fleetSummary() {
    return this.toAll('fleetSummary', undefined);
  }

  fleetHealth(worst: number, only: string[] | null) {
    return this.toAll('fleetHealth', { worst, only });
  }
}
