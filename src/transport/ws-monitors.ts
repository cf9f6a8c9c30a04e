import type { Faults } from '../errors/boundary.js';
import { isJwtPrincipalId } from '../security/jwt.js';
import type { WsConnections } from './ws-connections.js';
import type { WsAccess } from './ws-server.js';

/** Sessions whose token expired are closed by a check this often. */
const CREDENTIALS_CHECK_MS = 1000;

/**
 * The two looks over every session that no event brings: lag (topic publishes cannot report a
 * slow receiver, so buffers are looked at on a short interval) and credentials (revoked keys end
 * their sessions at once, expired ws-tokens within CREDENTIALS_CHECK_MS). Returns the stop.
 */
export function startSessionMonitors(
  connections: WsConnections,
  opts: { readonly lagBytes: number; readonly lagCheckMs: number },
  access: Pick<WsAccess, 'keys' | 'authRequired'>,
  faults: Faults,
): () => void {
  const lagMonitor = setInterval(() => {
    const now = Date.now();
    for (const ws of connections.sockets) {
      const session = ws.getUserData().session;
      if (session === null) continue;
      try {
        if (session.lagging) session.catchUp(now);
        else if (ws.getBufferedAmount() > opts.lagBytes) session.enterLag(now);
      } catch (error) {
        faults.report('lag_monitor', error, { conn: session.connectionId }); // the other clients are still looked at
      }
    }
  }, opts.lagCheckMs);
  lagMonitor.unref();

  // Revoked keys (by this instance, or found by the key reload: another instance, the CLI) end
  // their sessions at once. A JWT's principal is no stored key: it ends at its `exp`, not by revocation.
  const valid = (keyId: string) => isJwtPrincipalId(keyId) || access.keys.get(keyId) !== null;
  const checkCredentials = () => {
    const now = Date.now();
    const anonymousAllowed = !access.authRequired();
    for (const ws of [...connections.sockets]) ws.getUserData().session?.checkCredentials(now, valid, anonymousAllowed);
  };
  access.keys.onRevoked(checkCredentials);
  const credentialsMonitor = setInterval(faults.guard('ws', checkCredentials), CREDENTIALS_CHECK_MS);
  credentialsMonitor.unref();

  return () => {
    clearInterval(lagMonitor);
    clearInterval(credentialsMonitor);
  };
}
