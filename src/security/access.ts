import type { Config } from '../config.js';
import type { ApiKeyStore, Credentials, Principal } from './api-keys.js';
import type { JwtVerifier } from './jwt.js';
import type { WsTokens } from './ws-token.js';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export class InsecureBindError extends Error {
  override readonly name = 'InsecureBindError';
}

/**
 * Who a request is. With no API key ever made and no ALLOW_ANONYMOUS, the hub only serves loopback;
 * binding another interface then refuses to start. Once a key has existed, every route but the
 * probes needs one (unless ALLOW_ANONYMOUS=true), even after every key was revoked: the revoked
 * rows stay, so this is stored and holds on every instance and across restarts.
 */
export function accessPolicy(config: Config, keys: ApiKeyStore, tokens: WsTokens, jwt: JwtVerifier | null = null) {
  const loopback = LOOPBACK.test(config.HOST);
  // A configured JWT verifier switches authentication on like a key does: no anonymous access then.
  if (!loopback && !keys.everIssued && jwt === null && !config.ALLOW_ANONYMOUS) {
    throw new InsecureBindError(
      `HOST=${config.HOST} is not a loopback address and no API key exists: the hub would be open to anyone. ` +
        'Create a key first (npm run keys -- create --scope admin --name ops), or set ALLOW_ANONYMOUS=true to serve without keys on purpose.',
    );
  }
  const authRequired = () => (keys.everIssued || jwt !== null) && !config.ALLOW_ANONYMOUS;
  const anonymous: Credentials = { principal: { kind: 'anonymous' } satisfies Principal, expiresAt: null };
  /** A JWT is verified asynchronously (jose); API keys and ws-tokens are answered at once. */
  const authenticate = (token: string): Credentials | null | Promise<Credentials | null> => {
    if (jwt?.looksLikeJwt(token)) return jwt.verify(token).then((outcome) => (outcome.ok ? outcome.credentials : null));
    const key = keys.verify(token);
    if (key) return { principal: { kind: 'key', key }, expiresAt: null };
    const verified = tokens.verify(token, Date.now());
    const tokenKey = verified === null ? null : keys.get(verified.keyId);
    return tokenKey ? { principal: { kind: 'key', key: tokenKey }, expiresAt: verified!.expiresAt } : null;
  };
  return {
    loopback,
    authRequired,
    ws: {
      authTimeoutMs: config.WS_AUTH_TIMEOUT_S * 1000,
      authRequired,
      authenticate,
      fromUpgrade(apiKey: string, token: string): Credentials | 'invalid' | null | Promise<Credentials | 'invalid'> {
        const presented = apiKey || token;
        if (presented) {
          const credentials = authenticate(presented);
          return credentials instanceof Promise ? credentials.then((c) => c ?? 'invalid') : (credentials ?? 'invalid');
        }
        return authRequired() ? null : anonymous;
      },
    },
  };
}
