import type { Faults } from '../errors/boundary.js';
import type { LocalDelivery } from '../fanout/fanout.js';
import type { Hub } from '../hub/hub.js';
import { LagRouter } from '../hub/lag-router.js';
import { CloseCode } from '../hub/protocol.js';
import { Session, type ClientSocket, type SessionLimits } from '../hub/session.js';
import { alsoOnAll, sharedTopic } from '../hub/topics.js';
import { SUMMARY_TOPIC } from '../hub/fleet-summary.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { ApiKeyStore, Credentials } from '../security/api-keys.js';
import { originAllowed, presentedKey } from './http/guard.js';
import { requestHeaderBytes } from './http/header-limit.js';
import { loadUws, type HttpResponse, type TemplatedApp, type WebSocket } from './uws.js';

/** How WebSocket clients prove who they are (see docs/security.md). */
export interface WsAccess {
  /** The credentials of an upgrade request: from a header key or a `?token=`; 'invalid' refuses it; null: must send `auth`. */
  fromUpgrade(apiKey: string, token: string): Credentials | 'invalid' | null;
  /** An `auth` message's token (an API key or a ws-token). */
  authenticate(token: string): Credentials | null;
  readonly authTimeoutMs: number;
  /** False while the hub serves without keys (anonymous sessions are ended once it does not). */
  readonly authRequired: () => boolean;
  /** Valid keys, and word of revoked ones: their sessions end at once. */
  readonly keys: ApiKeyStore;
  /** Host names this hub serves (DNS rebinding) and the origins besides its own allowed to connect. */
  readonly hostAllowed: (host: string) => boolean;
  readonly corsOrigins: ReadonlySet<string>;
}

/** Sessions whose token expired are closed by a check this often. */
const CREDENTIALS_CHECK_MS = 1000;

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

interface UserData {
  readonly connectionId: string;
  readonly remoteAddress: string;
  readonly credentials: Credentials | null;
  /** Counted in `unauthenticated` until its `auth` succeeds. */
  awaitingAuth: boolean;
  session: Session | null;
  authTimer: NodeJS.Timeout | null;
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
  hub: Hub,
  opts: WsServerOptions,
  log: Logger,
  metrics: Metrics,
  access: WsAccess,
  faults: Faults,
): WsServer {
  const uws = loadUws();
  const lag = new LagRouter();
  const sockets = new Set<WebSocket<UserData>>();
  const perAddress = new Map<string, number>();
  let unauthenticated = 0;
  const authenticated = (data: UserData) => {
    if (!data.awaitingAuth) return;
    data.awaitingAuth = false;
    unauthenticated--;
    metrics.wsUnauthenticated.set(unauthenticated);
  };
  let nextId = 0;
  let accepting = true;
  const idPrefix = `${process.pid.toString(36)}-`;
  const hardFrameBytes = Math.max(opts.maxFrameBytes * HARD_FRAME_FACTOR, MIN_HARD_FRAME_BYTES);

  app.ws<UserData>('/ws', {
    compression: uws.DISABLED,
    maxPayloadLength: hardFrameBytes * RECEIVE_CEILING_FACTOR,
    idleTimeout: opts.idleTimeoutS,
    sendPingsAutomatically: true,
    maxBackpressure: opts.maxBackpressureBytes,
    closeOnBackpressureLimit: true,

    upgrade(res, req, context) {
      // The request object is only valid during this call: copy what the connection keeps.
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      if (!accepting || sockets.size >= opts.maxConnections) {
        return refuseUpgrade(res, accepting ? 'refused_limit' : 'refused_shutdown', '503 Service Unavailable', accepting ? 'too_many_connections' : 'shutting_down', 'try again later');
      }
      const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
      if ((perAddress.get(remoteAddress) ?? 0) >= opts.maxConnectionsPerAddress && !opts.exemptAddresses.has(remoteAddress)) {
        return refuseUpgrade(res, 'refused_address_limit', '429 Too Many Requests', 'too_many_connections_from_address', `at most ${opts.maxConnectionsPerAddress} connections per client address (WS_MAX_CONNECTIONS_PER_IP)`);
      }
      if (requestHeaderBytes(req) > opts.maxHeaderBytes) {
        return refuseUpgrade(res, 'refused_headers', '431 Request Header Fields Too Large', 'headers_too_large', `request headers over ${opts.maxHeaderBytes} bytes (HTTP_MAX_HEADER_BYTES)`);
      }
      const host = req.getHeader('host');
      // A page on another site may open a WebSocket to any address (no CORS): only this hub's own
      // pages and CORS_ORIGINS may, and only under a name of this hub (DNS rebinding).
      const browserRefusal = !access.hostAllowed(host)
        ? (['421 Misdirected Request', 'misdirected_request', 'this hub does not serve that host name (ALLOWED_HOSTS)', 'refused_host'] as const)
        : !originAllowed(access.corsOrigins, req.getHeader('origin'), host)
          ? (['403 Forbidden', 'origin_not_allowed', 'WebSocket connections from this Origin are not allowed (CORS_ORIGINS)', 'refused_origin'] as const)
          : null;
      if (browserRefusal !== null) {
        const [status, code, message, outcome] = browserRefusal;
        metrics.wsConnectionsTotal.inc({ outcome });
        res.writeStatus(status).writeHeader('content-type', 'application/json');
        res.end(JSON.stringify({ detail: message, error: { code, message } }));
        return;
      }
      const credentials = access.fromUpgrade(presentedKey(req), new URLSearchParams(req.getQuery() ?? '').get('token') ?? '');
      if (credentials === 'invalid') {
        metrics.wsConnectionsTotal.inc({ outcome: 'refused_auth' });
        res.writeStatus('401 Unauthorized').writeHeader('content-type', 'application/json');
        res.end(JSON.stringify({ detail: 'Invalid API key or token', error: { code: 'invalid_token', message: 'invalid API key or token' } }));
        return;
      }
      if (credentials === null && unauthenticated >= opts.maxUnauthenticated) {
        return refuseUpgrade(res, 'refused_unauthenticated_limit', '503 Service Unavailable', 'too_many_unauthenticated', `at most ${opts.maxUnauthenticated} connections may wait to authenticate (WS_MAX_UNAUTHENTICATED): send a key or ?token= with the upgrade, or retry`);
      }
      const data: UserData = { connectionId: idPrefix + (nextId++).toString(36), remoteAddress, credentials, awaitingAuth: false, session: null, authTimer: null };
      res.upgrade(data, key, protocol, extensions, context);
    },

    // Each handler is an error boundary: a fault is reported (and answered where there is a request)
    // and never reaches uWS, which would end the process.
    open(ws) {
      const data = ws.getUserData();
      sockets.add(ws);
      perAddress.set(data.remoteAddress, (perAddress.get(data.remoteAddress) ?? 0) + 1);
      try {
        // A socket that must still authenticate leaves the WS_MAX_UNAUTHENTICATED count once it has.
        const authenticate =
          data.credentials === null
            ? (token: string) => {
                const credentials = access.authenticate(token);
                if (credentials !== null) authenticated(data);
                return credentials;
              }
            : access.authenticate;
        data.session = new Session(data.connectionId, new UwsClientSocket(ws), hub, lag, opts, metrics, data.credentials, authenticate, faults);
        if (data.credentials === null) {
          data.awaitingAuth = true;
          unauthenticated++;
          metrics.wsUnauthenticated.set(unauthenticated);
          const session = data.session;
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
      sockets.delete(ws);
      const held = (perAddress.get(data.remoteAddress) ?? 1) - 1;
      if (held === 0) perAddress.delete(data.remoteAddress);
      else perAddress.set(data.remoteAddress, held);
      authenticated(data); // no longer waiting, either way
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

  function refuseUpgrade(res: HttpResponse, outcome: string, status: string, code: string, message: string): void {
    metrics.wsConnectionsTotal.inc({ outcome });
    res.writeStatus(status).writeHeader('content-type', 'application/json');
    res.writeHeader('retry-after', '5');
    res.end(JSON.stringify({ error: { code, message } }));
  }

  // Topic publishes cannot report a slow receiver, so look at buffers on a short interval instead.
  const lagMonitor = setInterval(() => {
    const now = Date.now();
    for (const ws of sockets) {
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
  // their sessions at once; expired ws-tokens within CREDENTIALS_CHECK_MS.
  const valid = (keyId: string) => access.keys.get(keyId) !== null;
  const checkCredentials = () => {
    const now = Date.now();
    const anonymousAllowed = !access.authRequired();
    for (const ws of [...sockets]) ws.getUserData().session?.checkCredentials(now, valid, anonymousAllowed);
  };
  access.keys.onRevoked(checkCredentials);
  const credentialsMonitor = setInterval(faults.guard('ws', checkCredentials), CREDENTIALS_CHECK_MS);
  credentialsMonitor.unref();

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
      accepting = false;
      for (const ws of [...sockets]) {
        metrics.wsCloses.inc({ reason: 'shutdown' });
        ws.end(CloseCode.goingAway, 'server shutting down');
      }
    },
    stop() {
      clearInterval(lagMonitor);
      clearInterval(credentialsMonitor);
    },
  };
}

/** The session's view of a uWS socket: methods on a prototype, so an idle connection costs one small object. */
class UwsClientSocket implements ClientSocket {
  constructor(private readonly ws: WebSocket<UserData>) {}
  send(frame: string): void {
    this.ws.send(frame, false);
  }
  subscribe(channel: string): void {
    this.ws.subscribe(channel);
  }
  unsubscribe(channel: string): void {
    this.ws.unsubscribe(channel);
  }
  bufferedAmount(): number {
    return this.ws.getBufferedAmount();
  }
  cork(fn: () => void): void {
    this.ws.cork(fn);
  }
  close(code: number, reason: string): void {
    this.ws.end(code, reason);
  }
}
