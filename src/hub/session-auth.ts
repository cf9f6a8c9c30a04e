import type { Credentials } from '../security/api-keys.js';
import { CloseCode, encodeAck, type RequestId } from './protocol.js';
import type { Session } from './session.js';

/**
 * Who a session is: an `auth` message (first authentication, or renewal with a fresh ws-token of
 * the same key, which moves the expiry), and the checks that end a session whose key was revoked
 * or whose token expired. State: `session.principal`, `expiresAt`, `awaitingAuth`.
 */

/** Messages held while a JWT of an `auth` message is verified (more get `rate_limited`). */
const MAX_WAITING_FOR_AUTH = 64;

/** A message that came while an `auth` message's JWT is verified: it waits for it, in order (bounded). */
export function waitForVerification(session: Session, waiting: string[], text: string): void {
  if (waiting.length < MAX_WAITING_FOR_AUTH) waiting.push(text);
  else session.sendError(null, 'rate_limited', `at most ${MAX_WAITING_FOR_AUTH} messages may wait while a token is verified`);
}

export function authenticateWith(session: Session, token: string, id: RequestId): void {
  const credentials = session.authenticate(token);
  if (!(credentials instanceof Promise)) return applyCredentials(session, credentials, id);
  session.awaitingAuth = [];
  credentials
    .then(
      (verified) => afterVerification(session, () => applyCredentials(session, verified, id)),
      (error: unknown) => afterVerification(session, () => session.internalError(id, error, 'auth')),
    )
    .catch((error: unknown) => session.internalError(id, error, 'auth'));
}

/** Applies a JWT's outcome, then handles the messages that waited for it. */
function afterVerification(session: Session, apply: () => void): void {
  const waiting = session.awaitingAuth ?? [];
  session.awaitingAuth = null;
  if (session.closed) return;
  session.socket.cork(() => {
    apply();
    for (const text of waiting) if (!session.closed) session.handleText(text);
  });
}

function applyCredentials(session: Session, credentials: Credentials | null, id: RequestId): void {
  if (credentials === null) {
    session.sendError(id, 'invalid_token', 'invalid API key or token');
    session.close(CloseCode.unauthenticated, 'invalid token');
    return;
  }
  const current = session.principal;
  const next = credentials.principal;
  if (current?.kind === 'key' && (next.kind !== 'key' || next.key.id !== current.key.id)) {
    session.sendError(id, 'forbidden', 'a session keeps the key it authenticated with; open another connection for another key');
    return;
  }
  session.principal = next;
  session.expiresAt = credentials.expiresAt;
  session.socket.send(encodeAck(id));
}

/**
 * Ends the session when its key was revoked (`valid` says no), its ws-token expired, or it is
 * anonymous on a hub that now requires keys; called on every key reload and once a second.
 */
export function checkCredentials(session: Session, now: number, valid: (keyId: string) => boolean, anonymousAllowed: boolean): void {
  const principal = session.principal;
  // Opened while the hub needed no key: once one exists, anonymous sessions end too.
  if (principal?.kind === 'anonymous' && !anonymousAllowed) session.close(CloseCode.unauthenticated, 'authentication now required');
  else if (principal?.kind === 'key' && !valid(principal.key.id)) session.close(CloseCode.keyRevoked, 'key revoked');
  else if (session.expiresAt !== null && now >= session.expiresAt) session.close(CloseCode.tokenExpired, 'token expired');
}
