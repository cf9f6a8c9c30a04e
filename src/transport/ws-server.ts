import type { Faults } from '../errors/boundary.js';
import type { LocalDelivery } from '../fanout/fanout.js';
import { SUMMARY_TOPIC } from '../hub/fleet-summary.js';
import { LagRouter } from '../hub/lag-router.js';
import { CloseCode } from '../hub/protocol.js';
import { Session, type Authenticate, type SessionContext, type SessionLimits } from '../hub/session.js';
import type { SessionHub } from '../hub/session-hub.js';
import { alsoOnAll, sharedTopic } from '../hub/topics.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { ApiKeyStore, Credentials } from '../security/api-keys.js';
import { UwsClientSocket } from './uws-client-socket.js';
import { loadUws, type TemplatedApp } from './uws.js';
import { WsConnections, type UserData } from './ws-connections.js';
import { startSessionMonitors } from './ws-monitors.js';
import { upgradeHandler } from './ws-upgrade.js';

/** How WebSocket clients prove who they are (see docs/security.md). */
export interface WsAccess {
  /** The credentials of an upgrade request: from a header key or a `?token=`; 'invalid' refuses it; null: must send `auth`. */
  fromUpgrade(apiKey: string, token: string): Credentials | 'invalid' | null | Promise<Credentials | 'invalid'>;
  /** An `auth` message's token (an API key, a ws-token, or a JWT: verified asynchronously). */
  authenticate(token: string): Credentials | null | Promise<Credentials | null>;
  readonly authTimeoutMs: number;
  /** False while the hub serves without keys (anonymous sessions are ended once it does not). */
  readonly authRequired: () => boolean;
  /** Valid keys, and word of revoked ones: their sessions end at once. */
  readonly keys: ApiKeyStore;
  /** Host names this hub serves (DNS rebinding) and the origins besides its own allowed to connect. */
  readonly hostAllowed: (host: string) => boolean;
  readonly corsOrigins: ReadonlySet<string>;
}

export interface WsServerOptions extends SessionLimits {
  readonly maxConnections: number;
  /** Connections held per client address (WS_MAX_CONNECTIONS_PER_IP), except addresses in `exemptAddresses`. */
  readonly maxConnectionsPerAddress: number;
  readonly exemptAddresses: ReadonlySet<string>;
  /** Sockets open that must still send `auth` (WS_MAX_UNAUTHENTICATED), across the hub. */
  readonly maxUnauthenticated: number;
  readonly maxHeaderBytes: number;
  readonly idleTimeoutS: number;
  /** uWS's own per-socket ceiling: past it the socket is closed rather than silently skipped. */
  readonly maxBackpressureBytes: number;
  readonly lagCheckMs: number;
}

export interface WsServer {
  readonly delivery: LocalDelivery;
  /** One publish of a `fleet_summary` frame to every summary subscriber of this instance. */
  readonly publishSummary: (frame: string) => void;
  readonly connections: number;
  /** Closes every client with 1001 (going away), for shutdown. */
  closeAll(): void;
  stop(): void;
}

/** Frames past this many times WS_MAX_FRAME_BYTES (at least 64 KiB) are closed with 1009; below it they get an error. */
const HARD_FRAME_FACTOR = 4;
const MIN_HARD_FRAME_BYTES = 64 * 1024;
/**
 * uWS buffers a frame whole before the hub sees it and drops the TCP connection, without a close
 * frame, past its own limit, so that limit sits above the hard one: frames between the two get the
 * documented 1009; the ceiling still bounds what one connection's frame may hold in memory.
 */
const RECEIVE_CEILING_FACTOR = 4;

/** Why uWS dropped a connection itself (the close handler gets 1006 and its reason), for /metrics. */
const DROPPED_BY_UWS: Readonly<Record<string, string>> = {
  'Received invalid UTF-8': 'invalid utf-8',
  'Received too big message': 'frame over receive ceiling',
};

/** Mounts the WebSocket endpoint `/ws`: per-device channels are uWS topics named by device id. */
export function attachWebSocket(
  app: TemplatedApp,
  hub: SessionHub,
  opts: WsServerOptions,
  log: Logger,
  metrics: Metrics,
  access: WsAccess,
  faults: Faults,
): WsServer {
  const uws = loadUws();
  const lag = new LagRouter();
  const context: SessionContext = { hub, lag, limits: opts, metrics, faults };
  const connections = new WsConnections(metrics);
  const sockets = connections.sockets;
  const hardFrameBytes = Math.max(opts.maxFrameBytes * HARD_FRAME_FACTOR, MIN_HARD_FRAME_BYTES);

  /** A socket that must still authenticate leaves the WS_MAX_UNAUTHENTICATED count once it has. */
  const authenticateCounted = (data: UserData): Authenticate => (token) => {
    const counted = (credentials: Credentials | null) => {
      if (credentials !== null) connections.authenticated(data);
      return credentials;
    };
    const credentials = access.authenticate(token);
    return credentials instanceof Promise ? credentials.then(counted) : counted(credentials);
  };

  app.ws<UserData>('/ws', {
    compression: uws.DISABLED,
    maxPayloadLength: hardFrameBytes * RECEIVE_CEILING_FACTOR,
    idleTimeout: opts.idleTimeoutS,
    sendPingsAutomatically: true,
    maxBackpressure: opts.maxBackpressureBytes,
    closeOnBackpressureLimit: true,

    upgrade: upgradeHandler({ opts, access, connections, metrics, faults }),

    // Each handler is an error boundary: a fault is reported (and answered where there is a request)
    // and never reaches uWS, which would end the process.
    open(ws) {
      const data = ws.getUserData();
      connections.opened(ws);
      try {
        const authenticate = data.credentials === null ? authenticateCounted(data) : access.authenticate;
        const session = new Session(data.connectionId, new UwsClientSocket(ws), context, data.credentials, authenticate);
        data.session = session;
        if (data.credentials === null) {
          connections.awaitAuth(data);
          data.authTimer = setTimeout(faults.guard('ws', () => session.closeUnauthenticated()), access.authTimeoutMs);
        }
        metrics.wsConnections.set(sockets.size);
        metrics.wsConnectionsTotal.inc({ outcome: 'accepted' });
        log.debug({ conn: data.connectionId, ip: data.remoteAddress }, 'ws connected');
      } catch (error) {
        faults.report('ws', error, { conn: data.connectionId, handler: 'open' });
        metrics.wsCloses.inc({ reason: 'internal error' });
        ws.end(CloseCode.internalError, 'internal error');
      }
    },

    message(ws, message, isBinary) {
      const session = ws.getUserData().session;
      if (session === null) return;
      if (message.byteLength > hardFrameBytes) {
        metrics.wsCloses.inc({ reason: 'message too big' });
        ws.end(CloseCode.messageTooBig, 'message too big');
        return;
      }
      try {
        if (isBinary) session.onBinary(Date.now());
        else session.onText(Buffer.from(message).toString('utf8'), Date.now());
      } catch (error) {
        session.internalError(null, error); // outside a decoded request (the rate limit, decoding)
      }
    },

    drain(ws) {
      try {
        ws.getUserData().session?.catchUp(Date.now());
      } catch (error) {
        faults.report('ws', error, { conn: ws.getUserData().connectionId, handler: 'drain' });
      }
    },

    close(ws, code, message) {
      const data = ws.getUserData();
      if (code === 1006 && message.byteLength > 0) metrics.wsCloses.inc({ reason: DROPPED_BY_UWS[Buffer.from(message).toString()] ?? 'protocol violation' });
      connections.closed(ws);
      if (data.authTimer !== null) clearTimeout(data.authTimer);
      try {
        data.session?.dispose();
      } catch (error) {
        faults.report('ws', error, { conn: data.connectionId, handler: 'close' });
      }
      data.session = null;
      metrics.wsConnections.set(sockets.size);
      log.debug({ conn: data.connectionId, code }, 'ws closed');
    },
  });

  const stopMonitors = startSessionMonitors(connections, opts, access, faults);

  const delivery: LocalDelivery = {
    toDevice(deviceId, frame, key) {
      app.publish(alsoOnAll(key) ? sharedTopic(deviceId) : deviceId, frame, false);
      lag.deliver(deviceId, key, frame);
    },
    toAll(frame, key) {
      app.publish('*', frame, false);
      lag.deliver('*', key, frame);
    },
  };

  return {
    delivery,
    publishSummary: (frame) => {
      app.publish(SUMMARY_TOPIC, frame, false);
    },
    get connections() {
      return sockets.size;
    },
    closeAll() {
      connections.accepting = false;
      for (const ws of [...sockets]) {
        metrics.wsCloses.inc({ reason: 'shutdown' });
        ws.end(CloseCode.goingAway, 'server shutting down');
      }
    },
    stop: stopMonitors,
  };
}
