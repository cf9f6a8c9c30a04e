import { listSetting, type Config } from '../config.js';
import { accessPolicy } from '../security/access.js';
import { ApiKeyStore } from '../security/api-keys.js';
import { JwtVerifier, jwtSettings } from '../security/jwt.js';
import { WsTokens } from '../security/ws-token.js';
import type { Database } from '../storage/database.js';
import { hostRule } from '../transport/http/guard.js';
import { redactUrl as redact } from '../redact-url.js';
import type { StartContext } from './context.js';

export type Access = Awaited<ReturnType<typeof startAccess>>;

/**
 * Who may do what (docs/security.md): API keys (reloaded every KEY_RELOAD_MS, so keys created or
 * revoked by the CLI or another instance take effect; a failed reload keeps the keys last loaded),
 * short-lived WebSocket tokens, JWTs, and the browser checks (Host, CORS origins).
 */
export async function startAccess({ config, life, metrics, faults }: StartContext, database: Database) {
  const keys = new ApiKeyStore(database.db);
  await keys.load();
  const keyReload = setInterval(faults.guard('key_reload', () => keys.refresh()), config.KEY_RELOAD_MS);
  keyReload.unref();
  life.onStop(() => clearInterval(keyReload));
  const tokens = new WsTokens(config.WS_TOKEN_SECRET, config.WS_TOKEN_TTL_S * 1000);
  const jwt = JwtVerifier.fromSettings(jwtSettings(config), (outcome) => metrics.jwtVerifications.inc({ outcome }));
  const policy = accessPolicy(config, keys, tokens, jwt);
  const corsOrigins = new Set(listSetting(config.CORS_ORIGINS));
  const hostAllowed = hostRule(config.HOST, listSetting(config.ALLOWED_HOSTS));
  return { keys, tokens, jwt, policy, corsOrigins, hostAllowed };
}

/** Says at start how requests are authenticated, and warns when nobody can be. */
export function logAccess(config: Config, access: Access, log: StartContext['log']): void {
  const { keys, jwt, policy } = access;
  if (keys.everIssued && keys.size === 0 && !config.ALLOW_ANONYMOUS) {
    log.warn('every API key is revoked: authentication stays on and no key is valid; create one with npm run keys -- create --scope admin');
  }
  if (jwt !== null) {
    log.info({ hs256: config.JWT_HS256_SECRET !== undefined, jwks: config.JWT_JWKS_URL === undefined ? null : redact(config.JWT_JWKS_URL) }, 'JWTs accepted (docs/security.md): authentication is required');
  }
  if (!policy.authRequired()) {
    log.warn(
      policy.loopback
        ? 'no API key exists: serving without authentication on loopback only (create one with npm run keys -- create)'
        : 'ALLOW_ANONYMOUS=true: serving without authentication on a non-loopback address',
    );
  }
}
