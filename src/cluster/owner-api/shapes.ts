import { z } from 'zod';
import { SEVERITIES } from '../../domain/alert-rules.js';
import { COMMAND_STATES, type CommandRequest } from '../../domain/command.js';
import type { alertData, commandData } from '../../domain/representations.js';
import { statusBody } from '../../domain/status-body.js';
import type { DeviceSettings, DeviceView } from '../../hub/device-views.js';

/**
 * The shapes that travel between instances (operations.ts names which call carries which). Each is
 * held to the TypeScript type the local implementation returns, so a schema that no longer matches
 * it fails the type check, not a peer at run time.
 */

/** What `JSON.stringify` leaves of `undefined`: a call without a body sends none (or null). */
export const noBody = z.null().optional();

/** The device a call to an owner is about (the transport's `device` field; `*` for calls to every instance). */
export const deviceKey = z.string().min(1).max(256);

const isoOrNull = z.string().nullable();

export const commandRequest: z.ZodType<CommandRequest> = z.object({
  command: z.string().min(1).max(64),
  params: z.record(z.string(), z.unknown()),
  timeoutS: z.number().int().positive(),
  maxAttempts: z.number().int().positive(),
  expiresInS: z.number().int().positive(),
});

export type CommandView = ReturnType<typeof commandData>;
export const commandView: z.ZodType<CommandView> = z.object({
  command_id: z.string(),
  device_id: z.string(),
  command: z.string(),
  params: z.record(z.string(), z.unknown()),
  state: z.enum(COMMAND_STATES),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  timeout_s: z.number(),
  result: z.unknown(),
  idempotency_key: z.string().nullable(),
  created_at: isoOrNull,
  updated_at: isoOrNull,
  expires_at: isoOrNull,
});

/** A submitted command as the API shows it, and whether this request created it (idempotency). */
export const submittedCommand = z.object({ command: commandView, created: z.boolean() });
export type SubmittedCommand = z.infer<typeof submittedCommand>;

export const deviceView: z.ZodType<DeviceView> = z.object({
  id: z.string(),
  status: z.enum(['online', 'offline', 'unknown']),
  flapping: z.boolean(),
  lastSeen: z.number().nullable(),
  ts: z.number().nullable(),
  batteryLevel: z.number().nullable(),
  rssi: z.number().nullable(),
  type: z.string().nullable(),
  name: z.string().nullable(),
  timeoutMs: z.number().nullable(),
  effectiveTimeoutMs: z.number(),
  timeoutSource: z.enum(['held', 'device', 'type', 'learned', 'default']),
  healthScore: z.number().nullable(),
  activeAlerts: z.number().int().nonnegative(),
});

export const deviceSettings: z.ZodType<DeviceSettings> = z
  .object({ type: z.string().max(64).nullable(), name: z.string().max(200).nullable(), timeoutMs: z.number().int().positive().nullable() })
  .partial()
  .strict();

export type AlertView = ReturnType<typeof alertData>;
export const alertView: z.ZodType<AlertView> = z.object({
  alert_id: z.string(),
  device_id: z.string(),
  anomaly_type: z.string(),
  severity: z.enum(SEVERITIES),
  state: z.enum(['raised', 'acknowledged', 'cleared']),
  data: z.record(z.string(), z.unknown()),
  raised_at: isoOrNull,
  updated_at: isoOrNull,
  cleared_at: isoOrNull,
  acknowledged_at: isoOrNull,
  acknowledged_by: z.string().nullable(),
});

/** A REST body rendered by the device's owner and passed through as it is (null: no such device there). */
export const ownerBody = z.record(z.string(), z.unknown()).nullable();
export type OwnerBody = z.infer<typeof ownerBody>;

/** A `POST /status` forwarded to the device's owner: the body as received (checked again there) and when. */
export const forwardedStatus = z.object({ body: statusBody.loose(), receivedAt: z.number().finite().nonnegative() });

/** What became of a `POST /status` at the device's owner; the HTTP layer renders it. */
export const statusOutcome = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('accepted') }),
  z.object({ kind: z.literal('invalid'), field: z.enum(['body', 'timestamp']), reason: z.string(), detail: z.string() }),
  z.object({ kind: z.literal('refused'), reason: z.enum(['device_limit', 'new_device_rate']) }),
]);
export type StatusOutcome = z.infer<typeof statusOutcome>;

export const alertAck = z.object({ alertId: z.string(), by: z.string() });

/** One owner's rows of the live fleet table (src/hub/fleet-summary.ts checks each row as it merges it). */
export const ownedRows = z.object({ from: z.string(), version: z.number(), devices: z.array(z.unknown()) });
export type OwnedRows = z.infer<typeof ownedRows>;

/** `only`: the devices of a key limited to some (null: all), so a limited key sees its own fleet. */
export const fleetHealthRequest = z.object({ worst: z.number().int().min(1).max(1000), only: z.array(z.string()).nullable() });

/** One instance's part of the fleet's health: the scores of the devices it owns. */
export const fleetPart = z.object({
  devices: z.number().int().nonnegative(),
  sum: z.number(),
  distribution: z.array(z.number().int().nonnegative()).length(5),
  worst: z.array(z.object({ device_id: z.string(), score: z.number() })),
});
export type FleetPart = z.infer<typeof fleetPart>;
