import type { z } from 'zod';
import { describeTextPath, findUnstorableText, mayHoldUnstorableText } from '../../domain/storable-text.js';
import type { Logger } from '../../logger.js';
import type { Principal } from '../../security/api-keys.js';
import { ACTIONS, authorize, type Action, type Decision } from '../../security/policy.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../uws.js';
import { browserCheck, commonHeaders, presentedKey, sendCors, type HttpSecurity } from './guard.js';
import { requestHeaderBytes } from './header-limit.js';
import { failRequest, sendJson, validationError, watchAbort } from './respond.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteRequest<B, Q> {
  readonly principal: Principal;
  readonly requestId: string;
  readonly ip: string;
  /** The path's `{…}` segments, percent-decoded. */
  readonly params: readonly string[];
  readonly query: Q;
  readonly body: B;
  /** The body as parsed JSON before the schema (HTTP ingest validates it again as telemetry). */
  readonly rawBody: unknown;
  /** The request headers the route asked for (the request object is gone once a body is read). */
  readonly headers: Readonly<Record<string, string>>;
  readonly aborted: { value: boolean };
  /** The same action on a device the handler found (an alert's device), or for filtering an aggregate. */
  authorize(deviceId: string): Decision;
  /** The body of a 403 the handler decided (counted in vigil_http_refused_total like the others). */
  forbidden(message: string): [status: '403 Forbidden', body: unknown];
}

/**
 * How the route finds the device its action touches: the first path parameter; a list read from
 * the validated body; `handler` when only the handler can know (it calls `authorize`); `none` for
 * actions on no single device (aggregates filter through `authorize`).
 */
export type DeviceSource<B> = 'path' | 'none' | 'handler' | { readonly fromBody: (body: B) => readonly string[] };

export interface RouteDef<B, Q> {
  readonly method: HttpMethod;
  /** OpenAPI style: `/status/{device_id}`. */
  readonly path: string;
  readonly summary: string;
  readonly action: Action;
  readonly device: DeviceSource<B>;
  readonly body?: z.ZodType<B>;
  /** An empty body is read as `{}`. */
  readonly optionalBody?: boolean;
  readonly maxBodyBytes?: number;
  readonly query?: z.ZodType<Q>;
  readonly headers?: readonly string[];
  /** The success status, for the OpenAPI document. */
  readonly ok: string;
  /** Left out of the OpenAPI document (the dashboard's files). */
  readonly internal?: boolean;
  /** Answers of this route besides the shared ones, for the OpenAPI document (status → description). */
  readonly answers?: Readonly<Record<string, string>>;
  handle(res: HttpResponse, r: RouteRequest<B, Q>): void;
}

/** A route with its types erased, as the table holds it. */
export interface Route {
  readonly method: HttpMethod;
  readonly path: string;
  readonly summary: string;
  readonly action: Action;
  readonly deviceSource: 'path' | 'none' | 'handler' | 'body';
  readonly body: z.ZodType | undefined;
  readonly optionalBody: boolean;
  readonly query: z.ZodType | undefined;
  readonly ok: string;
  readonly internal: boolean;
  readonly answers: Readonly<Record<string, string>>;
  /** Runs the route once the request passed the checks every route shares. */
  run(res: HttpResponse, req: HttpRequest, base: BaseRequest, env: RouteEnv): void;
}

interface BaseRequest {
  /** A promise while a JWT is verified (null once refused: the answer was sent). */
  readonly principal: Principal | Promise<Principal | null>;
  readonly requestId: string;
  readonly ip: string;
  readonly params: readonly string[];
  readonly aborted: { value: boolean };
}

interface RouteEnv {
  readonly maxBodyBytes: number;
  readonly countRefused: (code: string) => void;
  /** Runs a handler step inside the error boundary. */
  readonly guarded: (res: HttpResponse, step: () => void) => void;
}

export function route<B = undefined, Q = undefined>(def: RouteDef<B, Q>): Route {
  const device = def.device;
  return {
    method: def.method,
    path: def.path,
    summary: def.summary,
    action: def.action,
    deviceSource: typeof device === 'string' ? device : 'body',
    body: def.body,
    optionalBody: def.optionalBody ?? false,
    query: def.query,
    ok: def.ok,
    internal: def.internal ?? false,
    answers: def.answers ?? {},
    run(res, req, base, env) {
      let query = undefined as Q;
      if (def.query) {
        const given = Object.fromEntries(new URLSearchParams(req.getQuery() ?? ''));
        // URLSearchParams turns malformed escapes into U+FFFD but lets %00 through: refuse it here,
        // as in bodies, before any query value can reach the database.
        const at = findUnstorableText(given);
        if (at !== null) {
          env.countRefused('unstorable_text');
          const msg = `${describeTextPath(at)} holds NUL (U+0000), which cannot be stored or queried`;
          return sendJson(res, '422 Unprocessable Entity', { detail: [{ loc: ['query', ...at], msg, type: 'unstorable_text' }] });
        }
        const parsed = def.query.safeParse(given);
        if (!parsed.success) {
          env.countRefused('invalid_query');
          return sendJson(res, '422 Unprocessable Entity', validationError('query', parsed.error));
        }
        query = parsed.data;
      }
      const headers: Record<string, string> = {};
      for (const name of def.headers ?? []) headers[name] = req.getHeader(name);
      // The request object is only valid now; a JWT's principal may come later (query and headers are copied above).
      const withPrincipal = (step: (principal: Principal) => void) => {
        const given = base.principal;
        if (!(given instanceof Promise)) return step(given);
        given.then(
          (principal) => {
            if (principal !== null && !base.aborted.value) res.cork(() => env.guarded(res, () => step(principal)));
          },
          (error: unknown) => {
            if (!base.aborted.value) res.cork(() => env.guarded(res, () => { throw error; }));
          },
        );
      };
      const request = (principal: Principal, body: B, rawBody: unknown): RouteRequest<B, Q> => ({
        ...base,
        principal,
        query,
        body,
        rawBody,
        headers,
        authorize: (deviceId) => authorize(principal, def.action, deviceId),
        forbidden: (message) => {
          env.countRefused('forbidden');
          return forbiddenAnswer(message);
        },
      });
      const schema = def.body;
      if (schema === undefined) return withPrincipal((principal) => def.handle(res, request(principal, undefined as B, undefined)));
      // The body is read at once (uWS drops data that arrives before a reader is set), in parallel with a JWT's verification.
      readBody(res, def.maxBodyBytes ?? env.maxBodyBytes, base.aborted, def.optionalBody ?? false, env.countRefused, (raw) =>
        withPrincipal((principal) =>
          env.guarded(res, () => {
            const parsed = schema.safeParse(raw);
            if (!parsed.success) {
              env.countRefused('invalid_body');
              return sendJson(res, '422 Unprocessable Entity', validationError('body', parsed.error));
            }
            if (typeof device === 'object') {
              for (const id of device.fromBody(parsed.data)) {
                const decision = authorize(principal, def.action, id);
                if (!decision.ok) {
                  env.countRefused('forbidden');
                  return sendJson(res, ...forbiddenAnswer(decision.message));
                }
              }
            }
            def.handle(res, request(principal, parsed.data, raw));
          }),
        ),
      );
    },
  };
}

const forbiddenAnswer = (message: string): [status: '403 Forbidden', body: unknown] => ['403 Forbidden', { detail: message, error: { code: 'forbidden', message } }];

/**
 * Reads a JSON body up to `limit` bytes (413 past it, 400 when not JSON) and refuses (422
 * `unstorable_text`, with the field's location) a key or string holding NUL or a lone surrogate,
 * which no table can store: every body is checked here, so no route can pass one on to the
 * database. Answers corked; refusals are counted through `countRefused`.
 */
function readBody(
  res: HttpResponse,
  limit: number,
  aborted: { value: boolean },
  optional: boolean,
  countRefused: (code: string) => void,
  done: (value: unknown) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const fail = (status: string, detail: string, code: string) => {
    finished = true;
    countRefused(code);
    if (!aborted.value) res.cork(() => sendJson(res, status, { detail, error: { code, message: detail } }));
  };
  res.onData((chunk, isLast) => {
    if (finished) return;
    size += chunk.byteLength;
    if (size > limit) return fail('413 Payload Too Large', `body larger than ${limit} bytes`, 'body_too_large');
    // uWS reuses the chunk's memory after this call: copy it.
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast) return;
    finished = true;
    if (aborted.value) return;
    const raw = Buffer.concat(chunks);
    const text = raw.toString('utf8');
    let value: unknown;
    if (optional && text.trim() === '') value = {};
    else {
      try {
        value = JSON.parse(text) as unknown;
      } catch {
        return fail('400 Bad Request', 'body is not valid JSON', 'invalid_json');
      }
    }
    const at = mayHoldUnstorableText(raw) ? findUnstorableText(value) : null;
    if (at !== null) {
      countRefused('unstorable_text');
      const msg = `${describeTextPath(at)} holds NUL (U+0000) or a lone surrogate (U+D800-U+DFFF), which cannot be stored`;
      res.cork(() => sendJson(res, '422 Unprocessable Entity', { detail: [{ loc: ['body', ...at], msg, type: 'unstorable_text' }] }));
      return;
    }
    res.cork(() => done(value));
  });
}

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
export function mountRoutes(app: TemplatedApp, routes: readonly Route[], sec: HttpSecurity, log: Logger): void {
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

  app.any('/*', (res, req) => {
    const requestId = commonHeaders(sec, res, req);
    const method = req.getMethod().toUpperCase();
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
      const parts = url.split('/').slice(1);
      const candidates = compiled.filter((c) => c.segments.length === parts.length && c.segments.every((s, i) => s === null || s === parts[i]));
      if (candidates.length === 0) return refuse(sec, res, '404 Not Found', 'not_found', `no route for ${url.slice(0, 200)}`);
      // A literal segment beats a parameter (`/status/summary` before `/status/{device_id}`).
      const mostSpecific = Math.max(...candidates.map((c) => c.literals));
      const atPath = candidates.filter((c) => c.literals === mostSpecific);
      const match = atPath.find((c) => c.route.method === method);
      if (match === undefined) {
        const allow = [...new Set(atPath.map((c) => c.route.method))].join(', ');
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

function refuse(sec: HttpSecurity, res: HttpResponse, status: string, code: string, detail: string, headers: Record<string, string> = {}): void {
  sec.metrics.httpRefused.inc({ code });
  sendJson(res, status, { detail, error: { code, message: detail } }, headers);
}
