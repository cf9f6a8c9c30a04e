import type { Faults } from '../errors/boundary.js';
import { SlicedPass } from '../jobs/in-slices.js';
import { isJwtPrincipalId } from '../security/jwt.js';
import type { WsConnections } from './ws-connections.js';
import type { WsAccess } from './ws-server.js';

/** Sessions whose token expired are closed by a check this often. */
const CREDENTIALS_CHECK_MS = 1000;
/** Sessions one look handles per event-loop turn (about a millisecond of work). */
const SESSIONS_PER_TURN = 1000;

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
  // Each look goes over the sessions SESSIONS_PER_TURN at a time (in-slices.ts): in one turn, a
  // look over 10,000 sessions held the event loop ~10 ms every WS_LAG_CHECK_MS (#21).
  const lagLook = new SlicedPass(
    () => connections.sockets,
    SESSIONS_PER_TURN,
    (ws) => {
      const session = ws.getUserData().session;
      if (session === null) return;
      try {
        if (session.lagging) session.catchUp(Date.now());
        else if (ws.getBufferedAmount() > opts.lagBytes) session.enterLag(Date.now());
      } catch (error) {
        faults.report('lag_monitor', error, { conn: session.connectionId }); // the other clients are still looked at
      }
    },
    faults.catcher('lag_monitor'),
  );
  const lagMonitor = setInterval(faults.guard('lag_monitor', () => lagLook.run()), opts.lagCheckMs);
  lagMonitor.unref();

  // Revoked keys (by this instance, or found by the key reload: another instance, the CLI) end
  // their sessions at once. A JWT's principal is no stored key: it ends at its `exp`, not by revocation.
  const valid = (keyId: string) => isJwtPrincipalId(keyId) || access.keys.get(keyId) !== null;
  const credentialsLook = new SlicedPass(
    () => connections.sockets,
    SESSIONS_PER_TURN,
    (ws) => ws.getUserData().session?.checkCredentials(Date.now(), valid, !access.authRequired()),
    faults.catcher('ws'),
  );
  const checkCredentials = () => credentialsLook.run();
  access.keys.onRevoked(checkCredentials);
  const credentialsMonitor = setInterval(faults.guard('ws', checkCredentials), CREDENTIALS_CHECK_MS);
  credentialsMonitor.unref();

  return () => {
    clearInterval(lagMonitor);
    clearInterval(credentialsMonitor);
  };
}
