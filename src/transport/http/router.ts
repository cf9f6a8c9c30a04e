import type { Principal } from '../../security/api-keys.js';
import { ACTIONS, authorize } from '../../security/policy.js';
import type { HttpResponse, TemplatedApp } from '../uws.js';
import { browserCheck, commonHeaders, presentedKey, sendCors, type HttpSecurity } from './guard.js';
import { requestHeaderBytes } from './header-limit.js';
import { failRequest, sendJson, watchAbort } from './respond.js';
import type { Route } from './route.js';

// Route modules declare their routes with `route` (route.ts); the router mounts the table.
export { route, type DeviceSource, type HttpMethod, type Route, type RouteDef, type RouteRequest } from './route.js';

interface CompiledRoute {
  readonly route: Route;
  /** A literal segment, or null for a parameter. */
  readonly segments: readonly (string | null)[];
  readonly literals: number;
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * `decodeURIComponent` that answers null instead of throwing URIError on a malformed escape, and
 * for a segment decoding to NUL, which no id holds and PostgreSQL cannot take as a parameter.
 * (Lone surrogates cannot come out: their UTF-8 forms are malformed escapes.)
 */
function decodeSegment(raw: string): string | null {
  try {
    const decoded = decodeURIComponent(raw);
    return decoded.includes('\u0000') ? null : decoded;
  } catch {
    return null;
  }
}

/**
 * Mounts the whole REST table behind one uWS catch-all, so every request takes the same path:
 * security headers, Host (421), routing (404, 405 with Allow, 400 malformed_path), Origin (403) and
 * Content-Type (415) for browser-borne requests, authentication (401), the policy (403), the rate
 * limit (429), the body (413, 400, 422), then the handler inside an error boundary (500, reported
 * with the request id, without internals). Header size (431) comes first. Mount it after `/ws`.
 */
export function mountRoutes(app: TemplatedApp, routes: readonly Route[], sec: HttpSecurity): void {
  const compiled: CompiledRoute[] = routes.map((r) => {
    const segments = r.path.split('/').slice(1).map((s) => (s.startsWith('{') && s.endsWith('}') ? null : s));
    return { route: r, segments, literals: segments.filter((s) => s !== null).length };
  });
  const seen = new Set<string>();
  for (const { route: r } of compiled) {
    const id = `${r.method} ${r.path}`;
    if (seen.has(id)) throw new Error(`route ${id} is declared twice`);
    if (!(r.action in ACTIONS)) throw new Error(`route ${id} has no policy entry`);
    if (r.deviceSource === 'path' && !r.path.includes('{')) throw new Error(`route ${id} finds its device in a path without parameters`);
    seen.add(id);
  }

  /** The error boundary: the fault is reported (vigil_internal_errors_total{entry="http"}), the client gets a 500 without internals. */
  const internalError = (res: HttpResponse, error: unknown, aborted: { value: boolean }) => {
    try {
      failRequest(res, error, aborted);
    } catch {
      // The answer had already begun: nothing more can be written, so end the connection.
      try {
        res.close();
      } catch {
        // Already closed by the client.
      }
    }
  };

  app.any('/*', (native, req) => {
    const method = req.getMethod().toUpperCase();
    // HEAD is GET without a body (RFC 9110 §9.3.2): the same route, checks and headers.
    const res = method === 'HEAD' ? withoutBody(native) : native;
    const requestId = commonHeaders(sec, res, req);
    const url = req.getUrl();
    const aborted = watchAbort(res);
    const guarded = (r: HttpResponse, step: () => void) => {
      try {
        step();
      } catch (error) {
        internalError(r, error, aborted);
      }
    };
    guarded(res, () => {
      if (requestHeaderBytes(req) > sec.maxHeaderBytes) {
        return refuse(sec, res, '431 Request Header Fields Too Large', 'headers_too_large', `request headers over ${sec.maxHeaderBytes} bytes (HTTP_MAX_HEADER_BYTES)`);
      }
      const host = req.getHeader('host');
      if (!sec.hostAllowed(host)) return refuse(sec, res, '421 Misdirected Request', 'misdirected_request', 'this hub does not serve that host name (ALLOWED_HOSTS)');
      if (method === 'OPTIONS') return sendCors(sec, res, req.getHeader('origin'));
      // `/ws` is the WebSocket endpoint: uWS takes its upgrades before this catch-all.
      if (url === WS_PATH) {
        if (method !== 'GET' && method !== 'HEAD') return refuse(sec, res, '405 Method Not Allowed', 'method_not_allowed', `${method} is not allowed here; open a WebSocket (GET with Upgrade: websocket)`, { allow: 'GET, HEAD' });
        return refuse(sec, res, '426 Upgrade Required', 'upgrade_required', 'this is the WebSocket endpoint: send Upgrade: websocket (docs/websocket-protocol.md)', { upgrade: 'websocket', connection: 'Upgrade' });
      }
      const lookup = method === 'HEAD' ? 'GET' : method;
      const parts = url.split('/').slice(1);
      const candidates = compiled.filter((c) => c.segments.length === parts.length && c.segments.every((s, i) => s === null || s === parts[i]));
      if (candidates.length === 0) return refuse(sec, res, '404 Not Found', 'not_found', `no route for ${url.slice(0, 200)}`);
      // A literal segment beats a parameter (`/status/summary` before `/status/{device_id}`).
      const mostSpecific = Math.max(...candidates.map((c) => c.literals));
      const atPath = candidates.filter((c) => c.literals === mostSpecific);
      const match = atPath.find((c) => c.route.method === lookup);
      if (match === undefined) {
        const methods = new Set<string>(atPath.map((c) => c.route.method));
        if (methods.has('GET')) methods.add('HEAD');
        const allow = [...methods].join(', ');
        return refuse(sec, res, '405 Method Not Allowed', 'method_not_allowed', `${method} is not allowed here; use ${allow}`, { allow });
      }
      const r = match.route;
      const params: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (match.segments[i] !== null) continue;
        const decoded = decodeSegment(parts[i]!);
        if (decoded === null) return refuse(sec, res, '400 Bad Request', 'malformed_path', 'the path holds a malformed percent-escape');
        params.push(decoded);
      }
      if (STATE_CHANGING.has(method)) {
        const refused = browserCheck(sec, req, host, r.body !== undefined, r.optionalBody);
        if (refused !== null) return refuse(sec, res, refused.status, refused.code, refused.message);
      }

      const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
      /** The policy and the rate limit, the same for a key and a JWT; false when refused (answered). */
      const admit = (principal: Principal): boolean => {
        if (r.action !== 'public') {
          const decision = authorize(principal, r.action, r.deviceSource === 'path' ? params[0]! : null);
          if (!decision.ok) {
            refuse(sec, res, '403 Forbidden', decision.code, decision.message);
            return false;
          }
        }
        const wait = sec.limiter.take(principal.kind === 'key' ? `key:${principal.key.id}` : `ip:${ip}`, Date.now());
        if (wait > 0) refuse(sec, res, '429 Too Many Requests', 'rate_limited', 'too many requests', { 'retry-after': String(wait) });
        return wait <= 0;
      };
      let principal: Principal | Promise<Principal | null> = { kind: 'anonymous' };
      const token = r.action === 'public' ? '' : presentedKey(req);
      if (token && sec.jwt?.looksLikeJwt(token)) {
        principal = sec.jwt.verify(token).then((outcome) => {
          if (aborted.value) return null;
          let admitted: Principal | null = null;
          res.cork(() =>
            guarded(res, () => {
              if (!outcome.ok) {
                const unavailable = outcome.reason === 'keys_unavailable';
                return refuse(sec, res, unavailable ? '503 Service Unavailable' : '401 Unauthorized', unavailable ? 'jwt_keys_unavailable' : 'invalid_token', `Invalid token: ${outcome.message}`, unavailable ? { 'retry-after': '5' } : { 'www-authenticate': 'Bearer' });
              }
              if (admit(outcome.credentials.principal)) admitted = outcome.credentials.principal;
            }),
          );
          return admitted;
        });
      } else {
        if (token) {
          const key = sec.keys.verify(token);
          if (key === null) return refuse(sec, res, '401 Unauthorized', 'invalid_key', 'Invalid API key', { 'www-authenticate': 'Bearer' });
          principal = { kind: 'key', key };
        } else if (r.action !== 'public' && sec.authRequired()) {
          return refuse(sec, res, '401 Unauthorized', 'missing_key', 'API key required (X-API-Key or Authorization: Bearer)', { 'www-authenticate': 'Bearer' });
        }
        if (!admit(principal)) return;
      }
      r.run(res, req, { principal, requestId, ip, params, aborted }, { maxBodyBytes: sec.maxBodyBytes, countRefused: (code) => sec.metrics.httpRefused.inc({ code }), guarded });
    });
  });
}

const WS_PATH = '/ws';

/**
 * The response of a HEAD request: every handler writes it as for GET, and `end(body)` sends the
 * status and headers with the body's Content-Length but not the body (RFC 9110 §9.3.2). Calls returning the response
 * (chained writes) return this wrapper, so a chain ends here too.
 */
function withoutBody(res: HttpResponse): HttpResponse {
  const head: HttpResponse = new Proxy(res, {
    get(target, prop) {
      if (prop === 'end') {
        return (body?: string | Buffer | ArrayBuffer | ArrayBufferView) => {
          // Content-Length written as a header: uWS's endWithoutBody(length) leaves the connection
          // expecting that many body bytes, and the next request on it hangs up.
          target.writeHeader('content-length', String(body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength));
          // (No arguments: an explicit undefined length is written as a second Content-Length: 0.)
          target.endWithoutBody();
          return head;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const out: unknown = Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
        return out === target ? head : out;
      };
    },
  });
  return head;
}

function refuse(sec: HttpSecurity, res: HttpResponse, status: string, code: string, detail: string, headers: Record<string, string> = {}): void {
  sec.metrics.httpRefused.inc({ code });
  sendJson(res, status, { detail, error: { code, message: detail } }, headers);
}
