import type { Faults } from '../errors/boundary.js';
import type { Metrics } from '../metrics.js';
import type { Credentials } from '../security/api-keys.js';
import { originAllowed, presentedKey } from './http/guard.js';
import { requestHeaderBytes } from './http/header-limit.js';
import type { HttpRequest, HttpResponse } from './uws.js';
import type { UserData, WsConnections } from './ws-connections.js';
import type { WsAccess, WsServerOptions } from './ws-server.js';

type UpgradeContext = Parameters<HttpResponse['upgrade']>[4];

export interface UpgradeDeps {
  readonly opts: Pick<WsServerOptions, 'maxConnections' | 'maxConnectionsPerAddress' | 'exemptAddresses' | 'maxHeaderBytes' | 'maxUnauthenticated'>;
  readonly access: Pick<WsAccess, 'fromUpgrade' | 'hostAllowed' | 'corsOrigins'>;
  readonly connections: WsConnections;
  readonly metrics: Metrics;
  readonly faults: Faults;
}

/**
 * The `/ws` upgrade: the limits (connections, per address, header size), the browser checks
 * (Host, Origin), then the credentials of the request, a JWT's verified asynchronously. Each
 * refusal is an HTTP answer counted in vigil_ws_connections_total by outcome.
 */
export function upgradeHandler(deps: UpgradeDeps): (res: HttpResponse, req: HttpRequest, context: UpgradeContext) => void {
  const { opts, access, connections, metrics, faults } = deps;

  function refuseUpgrade(res: HttpResponse, outcome: string, status: string, code: string, message: string): void {
    metrics.wsConnectionsTotal.inc({ outcome });
    res.writeStatus(status).writeHeader('content-type', 'application/json');
    res.writeHeader('retry-after', '5');
    res.end(JSON.stringify({ error: { code, message } }));
  }

  function finishUpgrade(res: HttpResponse, credentials: Credentials | 'invalid' | null, remoteAddress: string, key: string, protocol: string, extensions: string, context: UpgradeContext): void {
    // Checked again: a JWT's verification may have outlasted the start of a shutdown.
    if (!connections.accepting) return refuseUpgrade(res, 'refused_shutdown', '503 Service Unavailable', 'shutting_down', 'try again later');
    if (credentials === 'invalid') {
      metrics.wsConnectionsTotal.inc({ outcome: 'refused_auth' });
      res.writeStatus('401 Unauthorized').writeHeader('content-type', 'application/json');
      res.end(JSON.stringify({ detail: 'Invalid API key or token', error: { code: 'invalid_token', message: 'invalid API key or token' } }));
      return;
    }
    if (credentials === null && connections.unauthenticated >= opts.maxUnauthenticated) {
      return refuseUpgrade(res, 'refused_unauthenticated_limit', '503 Service Unavailable', 'too_many_unauthenticated', `at most ${opts.maxUnauthenticated} connections may wait to authenticate (WS_MAX_UNAUTHENTICATED): send a key or ?token= with the upgrade, or retry`);
    }
    const data: UserData = { connectionId: connections.nextConnectionId(), remoteAddress, credentials, awaitingAuth: false, session: null, authTimer: null };
    res.upgrade(data, key, protocol, extensions, context);
  }

  /** A page on another site may open a WebSocket to any address (no CORS): only this hub's own pages and CORS_ORIGINS may, and only under a name of this hub (DNS rebinding). */
  function refusedBrowser(res: HttpResponse, req: HttpRequest): boolean {
    const host = req.getHeader('host');
    const refusal = !access.hostAllowed(host)
      ? (['421 Misdirected Request', 'misdirected_request', 'this hub does not serve that host name (ALLOWED_HOSTS)', 'refused_host'] as const)
      : !originAllowed(access.corsOrigins, req.getHeader('origin'), host)
        ? (['403 Forbidden', 'origin_not_allowed', 'WebSocket connections from this Origin are not allowed (CORS_ORIGINS)', 'refused_origin'] as const)
        : null;
    if (refusal === null) return false;
    const [status, code, message, outcome] = refusal;
    metrics.wsConnectionsTotal.inc({ outcome });
    res.writeStatus(status).writeHeader('content-type', 'application/json');
    res.end(JSON.stringify({ detail: message, error: { code, message } }));
    return true;
  }

  return (res, req, context) => {
    // The request object is only valid during this call: copy what the connection keeps.
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const accepting = connections.accepting;
    if (!accepting || connections.sockets.size >= opts.maxConnections) {
      return refuseUpgrade(res, accepting ? 'refused_limit' : 'refused_shutdown', '503 Service Unavailable', accepting ? 'too_many_connections' : 'shutting_down', 'try again later');
    }
    const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    if (connections.fromAddress(remoteAddress) >= opts.maxConnectionsPerAddress && !opts.exemptAddresses.has(remoteAddress)) {
      return refuseUpgrade(res, 'refused_address_limit', '429 Too Many Requests', 'too_many_connections_from_address', `at most ${opts.maxConnectionsPerAddress} connections per client address (WS_MAX_CONNECTIONS_PER_IP)`);
    }
    if (requestHeaderBytes(req) > opts.maxHeaderBytes) {
      return refuseUpgrade(res, 'refused_headers', '431 Request Header Fields Too Large', 'headers_too_large', `request headers over ${opts.maxHeaderBytes} bytes (HTTP_MAX_HEADER_BYTES)`);
    }
    if (refusedBrowser(res, req)) return;
    const presented = access.fromUpgrade(presentedKey(req), new URLSearchParams(req.getQuery() ?? '').get('token') ?? '');
    if (!(presented instanceof Promise)) return finishUpgrade(res, presented, remoteAddress, key, protocol, extensions, context);
    // A JWT is verified asynchronously: what the upgrade needs of the request was copied above.
    let aborted = false;
    res.onAborted(() => (aborted = true));
    presented.then(
      (credentials) => {
        if (!aborted) res.cork(() => finishUpgrade(res, credentials, remoteAddress, key, protocol, extensions, context));
      },
      (error: unknown) => {
        faults.report('ws', error, { handler: 'upgrade' });
        if (!aborted) res.cork(() => refuseUpgrade(res, 'refused_auth', '500 Internal Server Error', 'internal', 'internal error'));
      },
    );
  };
}
