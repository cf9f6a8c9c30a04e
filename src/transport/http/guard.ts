import { randomBytes } from 'node:crypto';
import type { Faults } from '../../errors/boundary.js';
import type { Metrics } from '../../metrics.js';
import { allows, type ApiKeyStore, type Principal, type Scope } from '../../security/api-keys.js';
import type { RateLimiter } from '../../security/rate-limiter.js';
import type { HttpRequest, HttpResponse } from '../uws.js';
import { requestHeaderBytes } from './header-limit.js';
import { sendJson, setCommonHeaders } from './respond.js';

export interface HttpSecurity {
  readonly keys: ApiKeyStore;
  /** False only when the hub runs without keys on loopback (or with ALLOW_ANONYMOUS=true). */
  readonly authRequired: () => boolean;
  readonly limiter: RateLimiter;
  readonly corsOrigins: ReadonlySet<string>;
  readonly metrics: Metrics;
  /** HTTP_MAX_HEADER_BYTES: larger request headers get a 431. */
  readonly maxHeaderBytes: number;
  readonly faults: Faults;
}

export interface RequestContext {
  readonly principal: Principal;
  readonly requestId: string;
  readonly ip: string;
}

export type GuardedHandler = (res: HttpResponse, req: HttpRequest, ctx: RequestContext) => void;
export type Guard = (scope: Scope | null, handler: GuardedHandler) => (res: HttpResponse, req: HttpRequest) => void;

/** Security headers of the earlier REST service (seed 003), on every response. */
const SECURITY_HEADERS: [string, string][] = [
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'DENY'],
  ['x-xss-protection', '1; mode=block'],
  ['strict-transport-security', 'max-age=31536000; includeSubDomains'],
  ['referrer-policy', 'no-referrer'],
  ['cache-control', 'no-store'],
];

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** The API key a request presents: `X-API-Key`, or `Authorization: Bearer`. */
export function presentedKey(req: HttpRequest): string {
  const header = req.getHeader('x-api-key');
  if (header) return header;
  const authorization = req.getHeader('authorization');
  return authorization.startsWith('Bearer ') ? authorization.slice(7).trim() : '';
}

/**
 * Wraps a route: request id, security and CORS headers, then authentication (401: no or bad key;
 * 403: a key without the scope), then the rate limit per key or per address (429 with Retry-After).
 * Everything is read from the request synchronously, as uWS requires.
 */
export function createGuard(sec: HttpSecurity): Guard {
  return (scope, handler) => (res, req) => {
    const given = req.getHeader('x-request-id');
    const requestId = REQUEST_ID.test(given) ? given : randomBytes(8).toString('hex');
    const origin = req.getHeader('origin');
    const headers: [string, string][] = [['x-request-id', requestId], ...SECURITY_HEADERS];
    if (origin && sec.corsOrigins.has(origin)) headers.push(['access-control-allow-origin', origin], ['vary', 'Origin']);
    setCommonHeaders(res, headers, { requestId, faults: sec.faults });
    if (requestHeaderBytes(req) > sec.maxHeaderBytes) {
      return refuse(sec, res, '431 Request Header Fields Too Large', 'headers_too_large', `request headers over ${sec.maxHeaderBytes} bytes (HTTP_MAX_HEADER_BYTES)`);
    }
    const ip = Buffer.from(res.getRemoteAddressAsText()).toString();

    let principal: Principal = { kind: 'anonymous' };
    const token = presentedKey(req);
    if (token) {
      const key = sec.keys.verify(token);
      if (key === null) return refuse(sec, res, '401 Unauthorized', 'invalid_key', 'Invalid API key', { 'www-authenticate': 'Bearer' });
      principal = { kind: 'key', key };
    } else if (scope !== null && sec.authRequired()) {
      return refuse(sec, res, '401 Unauthorized', 'missing_key', 'API key required (X-API-Key or Authorization: Bearer)', { 'www-authenticate': 'Bearer' });
    }
    if (scope !== null && !allows(principal, scope)) {
      return refuse(sec, res, '403 Forbidden', 'forbidden', `this key lacks the "${scope}" scope`);
    }
    const wait = sec.limiter.take(principal.kind === 'key' ? `key:${principal.key.id}` : `ip:${ip}`, Date.now());
    if (wait > 0) return refuse(sec, res, '429 Too Many Requests', 'rate_limited', 'too many requests', { 'retry-after': String(wait) });
    handler(res, req, { principal, requestId, ip });
  };
}

function refuse(sec: HttpSecurity, res: HttpResponse, status: string, code: string, detail: string, headers: Record<string, string> = {}): void {
  sec.metrics.httpRefused.inc({ code });
  sendJson(res, status, { detail, error: { code, message: detail } }, headers);
}

/** CORS preflight: allowed origins get the methods and headers the API uses. */
export function preflight(sec: HttpSecurity) {
  return (res: HttpResponse, req: HttpRequest) => {
    const origin = req.getHeader('origin');
    if (!origin || !sec.corsOrigins.has(origin)) {
      sendJson(res, '403 Forbidden', { detail: 'origin not allowed' });
      return;
    }
    res.writeStatus('204 No Content');
    res.writeHeader('access-control-allow-origin', origin);
    res.writeHeader('vary', 'Origin');
    res.writeHeader('access-control-allow-methods', 'GET, POST, PUT, DELETE, OPTIONS');
    res.writeHeader('access-control-allow-headers', 'content-type, x-api-key, authorization, x-request-id, idempotency-key');
    res.writeHeader('access-control-max-age', '600');
    res.end();
  };
}
