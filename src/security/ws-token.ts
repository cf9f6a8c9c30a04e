import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Short-lived WebSocket tokens (browsers cannot set headers on a WebSocket): `POST /ws-token` with
 * an API key returns one, valid for `ttlMs`, carrying the key id; the hub checks the HMAC and the
 * key (which must still exist) when the socket connects with `?token=` or sends it in `auth`, and
 * ends the session when it expires unless the client sent a fresh one in an `auth` message.
 */
export class WsTokens {
  private readonly secret: Buffer;

  constructor(secret: string | undefined, private readonly ttlMs = 60_000) {
    this.secret = secret ? Buffer.from(secret) : randomBytes(32);
  }

  issue(keyId: string, now: number): { token: string; expiresAt: number } {
    const expiresAt = now + this.ttlMs;
    const payload = `${keyId}.${expiresAt}`;
    return { token: `${payload}.${this.sign(payload)}`, expiresAt };
  }

  /** The key id the token was issued for and when it expires, or null when it is forged or expired. */
  verify(token: string, now: number): { keyId: string; expiresAt: number } | null {
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    const [keyId, expires, mac] = parts as [string, string, string];
    const expected = Buffer.from(this.sign(`${keyId}.${expires}`));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const expiresAt = Number(expires);
    return expiresAt > now ? { keyId, expiresAt } : null;
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }
}
