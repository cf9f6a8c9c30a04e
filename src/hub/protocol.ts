import { isDeviceId } from '../domain/device-id.js';

/**
 * The WebSocket protocol's client side, decoded without any transport (docs/websocket-protocol.md).
 * Every request may carry an `id` (number or short string) that the answer echoes.
 */
export type RequestId = number | string | null;

export type ClientMessage =
  | { readonly type: 'subscribe_device'; readonly id: RequestId; readonly deviceId: string; readonly resume: { readonly sinceSeq: number; readonly epoch: string } | null }
  | { readonly type: 'unsubscribe_device'; readonly id: RequestId; readonly deviceId: string }
  | { readonly type: 'subscribe_all'; readonly id: RequestId; readonly summaries: boolean }
  | { readonly type: 'unsubscribe_all'; readonly id: RequestId }
  | { readonly type: 'ping'; readonly id: RequestId }
  | { readonly type: 'ack_alert'; readonly id: RequestId; readonly alertId: string }
  | { readonly type: 'auth'; readonly id: RequestId; readonly token: string };

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

const CLIENT_TYPES = new Set(['subscribe_device', 'unsubscribe_device', 'subscribe_all', 'unsubscribe_all', 'ping', 'ack_alert', 'auth']);
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
      const since = m.since_seq;
      if (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0 || typeof m.epoch !== 'string' || m.epoch.length === 0 || m.epoch.length > 64) {
        return failure(id, 'invalid_resume', 'resuming needs "since_seq" (a non-negative integer) and "epoch" (from the snapshot) together');
      }
      return { ok: true, message: { type: m.type, id, deviceId: m.device_id, resume: { sinceSeq: since, epoch: m.epoch } } };
    }
    case 'ack_alert':
      if (typeof m.alert_id !== 'string' || !ALERT_ID.test(m.alert_id)) {
        return failure(id, 'invalid_alert_id', 'alert_id must be the id of an alert (a UUID)');
      }
      return { ok: true, message: { type: 'ack_alert', id, alertId: m.alert_id } };
    case 'auth':
      if (typeof m.token !== 'string' || m.token.length === 0 || m.token.length > 512) {
        return failure(id, 'invalid_token', 'auth needs a "token": an API key or a token from POST /ws-token');
      }
      return { ok: true, message: { type: 'auth', id, token: m.token } };
    case 'subscribe_all':
      if (m.summaries !== undefined && typeof m.summaries !== 'boolean') return failure(id, 'invalid_message', '"summaries" must be true or false');
      return { ok: true, message: { type: 'subscribe_all', id, summaries: m.summaries === true } };
    case 'unsubscribe_all':
    case 'ping':
      return { ok: true, message: { type: m.type, id } };
    default:
      return failure(id, 'unknown_type', 'unknown type');
  }
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

export function encodeError(error: ProtocolError): string {
  return JSON.stringify({ type: 'error', id: error.id, error: { code: error.code, message: error.message } });
}

export function encodePong(id: RequestId): string {
  return id === null ? '{"type":"pong"}' : JSON.stringify({ type: 'pong', id });
}
