import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures as in the Standard Webhooks spec (https://www.standardwebhooks.com/):
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`. The key
 * is ALERT_WEBHOOK_SECRET's UTF-8 bytes, or, for a secret written `whsec_<base64>` (the spec's
 * format, what its libraries expect), the base64-decoded rest. docs/notifications.md has a verifier.
 */
export function signingKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

export function sign(key: Buffer, id: string, timestampS: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

/**
 * What a receiver does (and the tests do): recompute, compare in constant time, refuse a timestamp
 * more than `toleranceS` away (replays). The header may hold several space-separated signatures
 * (during a secret rotation); one match is enough.
 */
export function verify(key: Buffer, headers: { id: string; timestamp: string; signature: string }, body: string, nowS: number, toleranceS = 300): boolean {
  const timestampS = Number(headers.timestamp);
  if (!Number.isInteger(timestampS) || Math.abs(nowS - timestampS) > toleranceS) return false;
  const expected = Buffer.from(sign(key, headers.id, timestampS, body));
  return headers.signature.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
