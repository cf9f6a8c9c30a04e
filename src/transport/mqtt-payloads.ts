import { describeTextPath, findUnstorableText, mayHoldUnstorableText } from '../domain/storable-text.js';

/**
 * `online` / `offline` in any case (Home Assistant, Zigbee2MQTT 1.x; Tasmota's LWT says `Online` /
 * `Offline`), JSON `{"online": true|false}`, or `{"state": "online"|"offline"}` (Zigbee2MQTT 2.x);
 * anything else is null.
 */
export function parseStatusPayload(payload: Buffer): boolean | null {
  if (payload.length > 256) return null;
  const text = payload.toString('utf8').trim();
  const word = wordOf(text);
  if (word !== null) return word;
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === 'object' && body !== null) {
      const { online, state } = body as { online?: unknown; state?: unknown };
      if (typeof online === 'boolean') return online;
      if (typeof state === 'string') return wordOf(state);
    }
  } catch {
    // not JSON: fall through
  }
  return null;
}

function wordOf(text: string): boolean | null {
  if (text.length !== 6 && text.length !== 7) return null;
  const lower = text.toLowerCase();
  return lower === 'online' ? true : lower === 'offline' ? false : null;
}

export type CommandAckResult =
  | { readonly ok: true; readonly commandId: string; readonly status: 'received' | 'succeeded' | 'failed'; readonly result: unknown }
  | { readonly ok: false; readonly reason: 'invalid_command_ack' | 'unstorable_text'; readonly detail: string };

export const ACK_SHAPE = 'expected {"command_id","status":"received"|"succeeded"|"failed"} for a pending command';

/** `{"command_id","status":"received"|"succeeded"|"failed","result"}`; a result the database cannot store is refused here. */
export function parseCommandAck(payload: Buffer): CommandAckResult {
  const invalid = { ok: false, reason: 'invalid_command_ack', detail: ACK_SHAPE } as const;
  if (payload.length > 16_384) return invalid;
  let body: { command_id?: unknown; status?: unknown; result?: unknown };
  try {
    body = JSON.parse(payload.toString('utf8')) as typeof body;
  } catch {
    return invalid;
  }
  if (typeof body !== 'object' || body === null) return invalid;
  if (typeof body.command_id !== 'string' || body.command_id.length > 64) return invalid;
  if (body.status !== 'received' && body.status !== 'succeeded' && body.status !== 'failed') return invalid;
  const result = body.result ?? null;
  if (mayHoldUnstorableText(payload)) {
    const at = findUnstorableText(result);
    if (at !== null) return { ok: false, reason: 'unstorable_text', detail: `result.${describeTextPath(at)} holds NUL or a lone surrogate, which cannot be stored` };
  }
  return { ok: true, commandId: body.command_id, status: body.status, result };
}
