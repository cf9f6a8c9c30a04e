import { z } from 'zod';
import type { CommandRequest } from '../../domain/command.js';
import type { DeviceSettings, DeviceView } from '../../hub/device-views.js';
import {
  alertAck,
  alertView,
  commandRequest,
  commandView,
  deviceSettings,
  deviceView,
  fleetHealthRequest,
  fleetPart,
  forwardedStatus,
  noBody,
  ownedRows,
  ownerBody,
  statusOutcome,
  submittedCommand,
  type AlertView,
  type CommandView,
  type FleetPart,
  type OwnedRows,
  type OwnerBody,
  type StatusOutcome,
  type SubmittedCommand,
} from './shapes.js';

/**
 * Every question one hub instance asks another, in one table. `owner`: asked of the instance that
 * owns the device (answered here when that is this one); `all`: asked of every live instance, this
 * one included, each answering for the devices it holds. `wire` is the name on the cluster bus, kept
 * across versions so instances of two releases still understand each other during a rolling upgrade.
 * The answering instance checks `request`, the asking one checks `answer` (proxy.ts); a call that
 * fails either check is counted in `vigil_cluster_invalid_calls_total{op,side}` and reads as "did
 * not answer". On a single instance nothing is serialised or checked (local.ts).
 */
export const OPERATIONS = {
  /** A device's snapshot frame, once the owner's frames up to its seq reached Redis (subscribe). */
  snapshot: { wire: 'snapshot', to: 'owner', request: noBody, answer: z.string() },
  /** Submits a command: the owner sends and tracks it (its acknowledgements reach the owner). */
  submitCommand: { wire: 'submit-command', to: 'owner', request: z.object({ request: commandRequest, idempotencyKey: z.string().nullable() }), answer: submittedCommand },
  /** The commands the owner holds in memory, newer than their stored rows (GET /devices/{id}/commands). */
  heldCommands: { wire: 'held-commands', to: 'owner', request: noBody, answer: z.array(commandView) },
  /** Live views of devices sharing one owner (null: unknown there), asked of the first one's owner. */
  views: { wire: 'views', to: 'owner', request: z.array(z.string()).min(1), answer: z.array(deviceView.nullable()) },
  /** New device settings (already stored), applied on the owner, which times the device out. */
  applySettings: { wire: 'apply-settings', to: 'owner', request: deviceSettings, answer: deviceView },
  /** GET /devices/{id}/metrics/summary as the owner renders it (null: unknown there). */
  metricsSummary: { wire: 'metrics-summary', to: 'owner', request: noBody, answer: ownerBody },
  /** GET /devices/{id}/health as the owner renders it (null: unknown there). */
  health: { wire: 'health', to: 'owner', request: noBody, answer: ownerBody },
  /** A POST /status received by another instance, ingested by the owner (new name: the answer changed shape). */
  ingestStatus: { wire: 'ingest-status', to: 'owner', request: forwardedStatus, answer: statusOutcome },
  /** A device deleted by an admin: every instance forgets it. */
  forget: { wire: 'forget', to: 'all', request: z.string(), answer: z.literal(true) },
  /** The device of an alert, from whichever instance holds the alert (null elsewhere). */
  alertDevice: { wire: 'alert-device', to: 'all', request: z.string(), answer: z.string().nullable() },
  /** Acknowledges an alert where it is held (null elsewhere). */
  ackAlert: { wire: 'ack-alert', to: 'all', request: alertAck, answer: alertView.nullable() },
  /** A new rule set version was stored: each instance reloads it and answers the version in force. */
  reloadRules: { wire: 'rules-reload', to: 'all', request: z.number().int().nonnegative(), answer: z.number().int().nonnegative() },
  /** Each owner's rows of the live fleet table (asked once at start). */
  fleetSummary: { wire: 'fleet-summary', to: 'all', request: noBody, answer: ownedRows },
  /** Each owner's part of GET /health/devices. */
  fleetHealth: { wire: 'fleet-health', to: 'all', request: fleetHealthRequest, answer: fleetPart },
} as const;

export type OperationName = keyof typeof OPERATIONS;
export type OwnerOperation = { [K in OperationName]: (typeof OPERATIONS)[K]['to'] extends 'owner' ? K : never }[OperationName];
export type FleetOperation = Exclude<OperationName, OwnerOperation>;
export type RequestOf<K extends OperationName> = z.output<(typeof OPERATIONS)[K]['request']>;
export type AnswerOf<K extends OperationName> = z.output<(typeof OPERATIONS)[K]['answer']>;

/**
 * What this instance answers for each operation, from its own services (local.ts collects them).
 * `deviceId` is the device an owner call is about (`*` for calls to every instance).
 */
export type OwnerHandlers = { [K in OperationName]: (deviceId: string, body: RequestOf<K>) => AnswerOf<K> | Promise<AnswerOf<K>> };

/** An owner's answer; `ok: false` when it could not be asked (owner gone, Redis away, an answer refused by schema). */
export type OwnerAnswer<T> = { readonly ok: true; readonly value: T } | { readonly ok: false };

/** Every instance's answer (one, here, without a cluster); instances that did not answer are counted. */
export interface FleetAnswers<T> {
  readonly answers: T[];
  readonly missing: number;
}

/** The typed calls themselves: the same on one instance (local.ts) and in a cluster (proxy.ts). */
export interface OwnerApi {
  /** True when this instance owns the device (always, on a single instance). */
  isLocal(deviceId: string): boolean;
  /** Ids split into those held here and groups by the instance that holds them. */
  byOwner(ids: readonly string[]): { local: string[]; remote: string[][] };

  snapshot(deviceId: string): Promise<OwnerAnswer<string>>;
  submitCommand(deviceId: string, request: CommandRequest, idempotencyKey: string | null): Promise<OwnerAnswer<SubmittedCommand>>;
  heldCommands(deviceId: string): Promise<OwnerAnswer<CommandView[]>>;
  /** `ids` share one owner (group them with byOwner). */
  views(ids: readonly string[]): Promise<OwnerAnswer<(DeviceView | null)[]>>;
  applySettings(deviceId: string, settings: DeviceSettings): Promise<OwnerAnswer<DeviceView>>;
  metricsSummary(deviceId: string): Promise<OwnerAnswer<OwnerBody>>;
  health(deviceId: string): Promise<OwnerAnswer<OwnerBody>>;
  ingestStatus(deviceId: string, body: RequestOf<'ingestStatus'>['body'], receivedAt: number): Promise<OwnerAnswer<StatusOutcome>>;

  forget(deviceId: string): Promise<FleetAnswers<true>>;
  alertDevice(alertId: string): Promise<FleetAnswers<string | null>>;
  ackAlert(alertId: string, by: string): Promise<FleetAnswers<AlertView | null>>;
  reloadRules(version: number): Promise<FleetAnswers<number>>;
  fleetSummary(): Promise<FleetAnswers<OwnedRows>>;
  fleetHealth(worst: number, only: string[] | null): Promise<FleetAnswers<FleetPart>>;
}
