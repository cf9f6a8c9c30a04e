import type { Session } from '../hub/session.js';
import type { Metrics } from '../metrics.js';
import type { Credentials } from '../security/api-keys.js';
import type { WebSocket } from './uws.js';

/** What uWS keeps for each WebSocket connection. */
export interface UserData {
  readonly connectionId: string;
  readonly remoteAddress: string;
  readonly credentials: Credentials | null;
  /** Counted in `unauthenticated` until its `auth` succeeds. */
  awaitingAuth: boolean;
  session: Session | null;
  authTimer: NodeJS.Timeout | null;
}

/**
 * The open connections of one `/ws` endpoint and the counts its limits look at: per client address
 * (WS_MAX_CONNECTIONS_PER_IP) and still to authenticate (WS_MAX_UNAUTHENTICATED, across the hub).
 */
export class WsConnections {
  readonly sockets = new Set<WebSocket<UserData>>();
  /** False once shutting down: upgrades are refused. */
  accepting = true;
  private readonly perAddress = new Map<string, number>();
  private waitingForAuth = 0;
  private nextId = 0;
  private readonly idPrefix = `${process.pid.toString(36)}-`;

  constructor(private readonly metrics: Metrics) {}

  /** Unique within the process; the pid tells instances on one machine apart in logs. */
  nextConnectionId(): string {
    return this.idPrefix + (this.nextId++).toString(36);
  }

  fromAddress(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }

  get unauthenticated(): number {
    return this.waitingForAuth;
  }

  opened(ws: WebSocket<UserData>): void {
    this.sockets.add(ws);
    const address = ws.getUserData().remoteAddress;
    this.perAddress.set(address, this.fromAddress(address) + 1);
  }

  /** The connection must still send `auth`: counted until it has (or closes). */
  awaitAuth(data: UserData): void {
    data.awaitingAuth = true;
    this.waitingForAuth++;
    this.metrics.wsUnauthenticated.set(this.waitingForAuth);
  }

  authenticated(data: UserData): void {
    if (!data.awaitingAuth) return;
    data.awaitingAuth = false;
    this.waitingForAuth--;
    this.metrics.wsUnauthenticated.set(this.waitingForAuth);
  }

  closed(ws: WebSocket<UserData>): void {
    const data = ws.getUserData();
    this.sockets.delete(ws);
    const held = (this.perAddress.get(data.remoteAddress) ?? 1) - 1;
    if (held === 0) this.perAddress.delete(data.remoteAddress);
    else this.perAddress.set(data.remoteAddress, held);
    this.authenticated(data); // no longer waiting, either way
  }
}
