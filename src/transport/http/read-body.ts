import { describeTextPath, findUnstorableText, mayHoldUnstorableText } from '../../domain/storable-text.js';
import type { HttpResponse } from '../uws.js';
import { sendJson } from './respond.js';

/**
 * Reads a JSON body up to `limit` bytes (413 past it, 400 when not JSON) and refuses (422
 * `unstorable_text`, with the field's location) a key or string holding NUL or a lone surrogate,
 * which no table can store: every body is checked here, so no route can pass one on to the
 * database. Answers corked; refusals are counted through `countRefused`.
 */
export function readBody(
  res: HttpResponse,
  limit: number,
  aborted: { value: boolean },
  optional: boolean,
  countRefused: (code: string) => void,
  done: (value: unknown) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const fail = (status: string, detail: string, code: string) => {
    finished = true;
    countRefused(code);
    if (!aborted.value) res.cork(() => sendJson(res, status, { detail, error: { code, message: detail } }));
  };
  res.onData((chunk, isLast) => {
    if (finished) return;
    size += chunk.byteLength;
    if (size > limit) return fail('413 Payload Too Large', `body larger than ${limit} bytes`, 'body_too_large');
    // uWS reuses the chunk's memory after this call: copy it.
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast) return;
    finished = true;
    if (aborted.value) return;
    const raw = Buffer.concat(chunks);
    const text = raw.toString('utf8');
    let value: unknown;
    if (optional && text.trim() === '') value = {};
    else {
      try {
        value = JSON.parse(text) as unknown;
      } catch {
        return fail('400 Bad Request', 'body is not valid JSON', 'invalid_json');
      }
    }
    const at = mayHoldUnstorableText(raw) ? findUnstorableText(value) : null;
    if (at !== null) {
      countRefused('unstorable_text');
      const msg = `${describeTextPath(at)} holds NUL (U+0000) or a lone surrogate (U+D800-U+DFFF), which cannot be stored`;
      res.cork(() => sendJson(res, '422 Unprocessable Entity', { detail: [{ loc: ['body', ...at], msg, type: 'unstorable_text' }] }));
      return;
    }
    res.cork(() => done(value));
  });
}
