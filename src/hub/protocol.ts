import { isDeviceId } from '../domain/device-id.js';
import { MAX_JWT_BYTES } from '../security/jwt.js';

/**
 * The WebSocket protocol's client side, decoded without any transport (docs/websocket-protocol.md).
 * Every request may carry an `id` (number or short string) that the answer echoes.
 */
export type RequestId = number | string | null;

export type ClientMessage =
  | { readonly type: 'subscribe_device'; readonly id: RequestId; readonly deviceId: string; readonly resume: DeviceResume | null }
  | { readonly type: 'unsubscribe_device'; readonly id: RequestId; readonly deviceId: string }
  | { readonly type: 'subscribe_all'; readonly id: RequestId; readonly resume: FleetResume | null; readonly summaries: boolean }
  | { readonly type: 'subscribe_devices'; readonly id: RequestId; readonly deviceIds: readonly string[]; readonly resume: ReadonlyMap<string, DeviceResume> }
  | { readonly type: 'unsubscribe_devices'; readonly id: RequestId; readonly deviceIds: readonly string[] }
  | { readonly type: 'unsubscribe_all'; readonly id: RequestId }
  | { readonly type: 'ping'; readonly id: RequestId }
  | { readonly type: 'ack_alert'; readonly id: RequestId; readonly alertId: string }
  | { readonly type: 'auth'; readonly id: RequestId; readonly token: string };

export interface DeviceResume {
  readonly sinceSeq: number;
  readonly epoch: string;
}

export interface FleetResume {
  readonly sinceFleetSeq: number;
  readonly epoch: string;
}

/** Most device ids one `subscribe_devices` / `unsubscribe_devices` may list. */
export const MAX_DEVICES_PER_REQUEST = 500;

/** Error codes a client can receive; each is counted in vigil_ws_client_errors_total. */
export type ErrorCode =
  | 'binary_not_supported'
  | 'frame_too_large'
  | 'invalid_json'
  | 'invalid_message'
  | 'unknown_type'
  | 'invalid_device_id'
  | 'subscription_limit'
  | 'rate_limited'
  | 'not_subscribed'
  | 'invalid_alert_id'
  | 'invalid_resume'
  | 'unavailable'
  | 'internal'
  | 'alert_not_found'
  | 'unauthenticated'
  | 'invalid_token'
  | 'forbidden';

export interface ProtocolError {
  readonly id: RequestId;
  readonly code: ErrorCode;
  readonly message: string;
}

export type DecodeOutcome = { readonly ok: true; readonly message: ClientMessage } | { readonly ok: false; readonly error: ProtocolError };

/** Close codes the hub uses (documented in docs/websocket-protocol.md). */
export const CloseCode = {
  goingAway: 1001,
  /** The connection could not be set up (a fault in the hub): reconnect. */
  internalError: 1011,
  messageTooBig: 1009,
  slowConsumer: 4008,
  subscriptionLimit: 4009,
  rateLimited: 4029,
  unauthenticated: 4401,
  forbidden: 4403,
  /** The session's API key was revoked (here, by another instance, or by the CLI). */
  keyRevoked: 4410,
  /** The ws-token the session authenticated with expired and was not renewed by an `auth` message. */
  tokenExpired: 4440,
} as const;

const CLIENT_TYPES = new Set(['subscribe_device', 'unsubscribe_device', 'subscribe_devices', 'unsubscribe_devices', 'subscribe_all', 'unsubscribe_all', 'ping', 'ack_alert', 'auth']);
const RESUME_NEEDS = 'resuming needs "since_seq" (a non-negative integer) and "epoch" (from the snapshot) together';
const ALERT_ID = /^[0-9a-f-]{36}$/;

const failure = (id: RequestId, code: ErrorCode, message: string): DecodeOutcome => ({
  ok: false,
  error: { id, code, message },
});

export function decodeClientMessage(text: string, maxBytes: number): DecodeOutcome {
  // Length in UTF-16 units never exceeds the UTF-8 byte length, so this check is cheap and safe.
  if (text.length > maxBytes || Buffer.byteLength(text) > maxBytes) {
    return failure(null, 'frame_too_large', `frames are limited to ${maxBytes} bytes`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return failure(null, 'invalid_json', 'frame is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return failure(null, 'invalid_message', 'a message is a JSON object with a "type"');
  }
  const m = body as Record<string, unknown>;
  const id = readId(m.id);
  if (typeof m.type !== 'string') return failure(id, 'invalid_message', 'a message is a JSON object with a "type"');
  if (!CLIENT_TYPES.has(m.type)) {
    return failure(id, 'unknown_type', `unknown type "${m.type.slice(0, 40)}"; expected one of ${[...CLIENT_TYPES].join(', ')}`);
  }
  switch (m.type) {
    case 'subscribe_device':
    case 'unsubscribe_device': {
      if (!isDeviceId(m.device_id)) {
        return failure(id, 'invalid_device_id', 'device_id must be 1-128 characters of [A-Za-z0-9._:-]');
      }
      if (m.type === 'unsubscribe_device') return { ok: true, message: { type: m.type, id, deviceId: m.device_id } };
      if (m.since_seq === undefined && m.epoch === undefined) return { ok: true, message: { type: m.type, id, deviceId: m.device_id, resume: null } };
      const resume = readResume(m.since_seq, m.epoch);
      if (resume === null) return failure(id, 'invalid_resume', RESUME_NEEDS);
      return { ok: true, message: { type: m.type, id, deviceId: m.device_id, resume: { sinceSeq: resume.since, epoch: resume.epoch } } };
    }
    case 'subscribe_devices':
    case 'unsubscribe_devices':
      return decodeDeviceList(m.type, id, m);
    case 'subscribe_all': {
      if (m.summaries !== undefined && typeof m.summaries !== 'boolean') return failure(id, 'invalid_message', '"summaries" must be true or false');
      const summaries = m.summaries === true;
      if (m.since_fleet_seq === undefined && m.epoch === undefined) return { ok: true, message: { type: m.type, id, resume: null, summaries } };
      const resume = readResume(m.since_fleet_seq, m.epoch);
      if (resume === null) return failure(id, 'invalid_resume', 'resuming the fleet feed needs "since_fleet_seq" (a non-negative integer) and "epoch" (from the subscribe_all ack) together');
      return { ok: true, message: { type: m.type, id, resume: { sinceFleetSeq: resume.since, epoch: resume.epoch }, summaries } };
    }
    case 'ack_alert':
      if (typeof m.alert_id !== 'string' || !ALERT_ID.test(m.alert_id)) {
        return failure(id, 'invalid_alert_id', 'alert_id must be the id of an alert (a UUID)');
      }
      return { ok: true, message: { type: 'ack_alert', id, alertId: m.alert_id } };
    case 'auth':
      // As long as a JWT may be: an RS256 one with a few claims is past 600 characters already.
      if (typeof m.token !== 'string' || m.token.length === 0 || m.token.length > MAX_JWT_BYTES) {
        return failure(id, 'invalid_token', 'auth needs a "token": an API key or a token from POST /ws-token');
      }
      return { ok: true, message: { type: 'auth', id, token: m.token } };
    case 'unsubscribe_all':
    case 'ping':
      return { ok: true, message: { type: m.type, id } };
    default:
      return failure(id, 'unknown_type', 'unknown type');
  }
}

function readResume(since: unknown, epoch: unknown): { since: number; epoch: string } | null {
  if (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0) return null;
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > 64) return null;
  return { since, epoch };
}

/** `device_ids` (1 … MAX_DEVICES_PER_REQUEST valid ids, repeats counted once) and, to subscribe, `resume` per id. */
function decodeDeviceList(type: 'subscribe_devices' | 'unsubscribe_devices', id: RequestId, m: Record<string, unknown>): DecodeOutcome {
  const list = m.device_ids;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_DEVICES_PER_REQUEST) {
    return failure(id, 'invalid_device_id', `device_ids must be a list of 1-${MAX_DEVICES_PER_REQUEST} device ids`);
  }
  const ids = new Set<string>();
  for (const [i, value] of list.entries()) {
    if (!isDeviceId(value)) return failure(id, 'invalid_device_id', `device_ids[${i}] must be 1-128 characters of [A-Za-z0-9._:-]`);
    ids.add(value);
  }
  const deviceIds = [...ids];
  if (type === 'unsubscribe_devices') return { ok: true, message: { type, id, deviceIds } };
  const resume = new Map<string, DeviceResume>();
  if (m.resume !== undefined) {
    if (typeof m.resume !== 'object' || m.resume === null || Array.isArray(m.resume)) return failure(id, 'invalid_resume', 'resume is an object: {"<device_id>":{"since_seq":N,"epoch":"…"}}');
    for (const [deviceId, value] of Object.entries(m.resume as Record<string, unknown>)) {
      if (!ids.has(deviceId)) return failure(id, 'invalid_resume', `resume names ${deviceId.slice(0, 128)}, which device_ids does not list`);
      const from = typeof value === 'object' && value !== null ? readResume((value as Record<string, unknown>).since_seq, (value as Record<string, unknown>).epoch) : null;
      if (from === null) return failure(id, 'invalid_resume', `resume.${deviceId}: ${RESUME_NEEDS}`);
      resume.set(deviceId, { sinceSeq: from.since, epoch: from.epoch });
    }
  }
  return { ok: true, message: { type, id, deviceIds, resume } };
}

/** Ids are echoed back, so only small scalars are kept; anything else is ignored. */
function readId(value: unknown): RequestId {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.length <= 64) return value;
  return null;
}

export function encodeAck(id: RequestId): string {
  return id === null ? '{"type":"ack"}' : JSON.stringify({ type: 'ack', id });
}

/** The answer to a resuming subscribe: whether the missed frames follow, or a fresh snapshot. */
export function encodeResumeAck(id: RequestId, recovered: boolean): string {
  return JSON.stringify({ type: 'ack', id, recovered });
}

/** The answer to `subscribe_all`: the fleet feed's epoch and last fleet_seq already sent, and (resuming) whether the missed frames follow. */
export function encodeFleetAck(id: RequestId, epoch: string, fleetSeq: number, recovered: boolean | null): string {
  return JSON.stringify({ type: 'ack', ...(id === null ? {} : { id }), epoch, fleet_seq: fleetSeq, ...(recovered === null ? {} : { recovered }) });
}

/** The answer to `subscribe_devices` / `unsubscribe_devices`, with the per-device outcome when there is one. */
export function encodeListAck(id: RequestId, extra: Readonly<Record<string, unknown>>): string {
  return JSON.stringify({ type: 'ack', ...(id === null ? {} : { id }), ...extra });
}

export function encodeError(error: ProtocolError): string {
  return JSON.stringify({ type: 'error', id: error.id, error: { code: error.code, message: error.message } });
}

export function encodePong(id: RequestId): string {
  return id === null ? '{"type":"pong"}' : JSON.stringify({ type: 'pong', id });
}
