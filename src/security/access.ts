import type { Config } from '../config.js';
import type { ApiKeyStore, Principal } from './api-keys.js';
import type { WsTokens } from './ws-token.js';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export class InsecureBindError extends Error {
  override readonly name = 'InsecureBindError';
}

/**
 * The hub's access policy. With no API key and no ALLOW_ANONYMOUS, the hub only serves loopback;
 * binding another interface then refuses to start. Once a key exists, every route but the probes
 * needs one (unless ALLOW_ANONYMOUS=true).
 */
export function accessPolicy(config: Config, keys: ApiKeyStore, tokens: WsTokens) {
  const loopback = LOOPBACK.test(config.HOST);
  if (!loopback && keys.size === 0 && !config.ALLOW_ANONYMOUS) {
    throw new InsecureBindError(
      `HOST=${config.HOST} is not a loopback address and no API key exists: the hub would be open to anyone. ` +
        'Create a key first (npm run keys -- create --scope admin --name ops), or set ALLOW_ANONYMOUS=true to serve without keys on purpose.',
    );
  }
  const authRequired = () => keys.size > 0 && !config.ALLOW_ANONYMOUS;
  const anonymous: Principal = { kind: 'anonymous' };
  const authenticate = (token: string): Principal | null => {
    const key = keys.verify(token);
    if (key) return { kind: 'key', key };
    const keyId = tokens.verify(token, Date.now());
    const tokenKey = keyId === null ? null : keys.get(keyId);
    return tokenKey ? { kind: 'key', key: tokenKey } : null;
  };
  return {
    loopback,
    authRequired,
    ws: {
      authTimeoutMs: config.WS_AUTH_TIMEOUT_S * 1000,
      authenticate,
      fromUpgrade(apiKey: string, token: string): Principal | 'invalid' | null {
        const presented = apiKey || token;
        if (presented) return authenticate(presented) ?? 'invalid';
        return authRequired() ? null : anonymous;
      },
    },
  };
}
