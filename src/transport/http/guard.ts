import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Faults } from '../../errors/boundary.js';
import type { Metrics } from '../../metrics.js';
import type { ApiKeyStore } from '../../security/api-keys.js';
import type { JwtVerifier } from '../../security/jwt.js';
import type { RateLimiter } from '../../security/rate-limiter.js';
import type { HttpRequest, HttpResponse } from '../uws.js';
import { sendJson, setCommonHeaders } from './respond.js';

export interface HttpSecurity {
  readonly keys: ApiKeyStore;
  /** JWTs of the user's own app (JWT_HS256_SECRET / JWT_JWKS_URL); null when neither is set. */
  readonly jwt?: JwtVerifier | null;
  /** False only when the hub runs without keys on loopback (or with ALLOW_ANONYMOUS=true). */
  readonly authRequired: () => boolean;
  readonly limiter: RateLimiter;
  readonly corsOrigins: ReadonlySet<string>;
  /** Whether a Host header names this hub (DNS rebinding: see `hostRule`). */
  readonly hostAllowed: (host: string) => boolean;
  readonly maxBodyBytes: number;
  readonly metrics: Metrics;
  /** HTTP_MAX_HEADER_BYTES: larger request headers get a 431. */
  readonly maxHeaderBytes: number;
  readonly faults: Faults;
}

/** Security headers on every response; pages that run scripts set their own CSP (static-files.ts). */
const SECURITY_HEADERS: [string, string][] = [
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'DENY'],
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

/** Request id, security and CORS headers for every answer of this request; returns the request id. */
export function commonHeaders(sec: HttpSecurity, res: HttpResponse, req: HttpRequest): string {
  const given = req.getHeader('x-request-id');
  const requestId = REQUEST_ID.test(given) ? given : randomBytes(8).toString('hex');
  const origin = req.getHeader('origin');
  const headers: [string, string][] = [['x-request-id', requestId], ...SECURITY_HEADERS];
  if (origin && sec.corsOrigins.has(origin)) headers.push(['access-control-allow-origin', origin], ['vary', 'Origin']);
  setCommonHeaders(res, headers, { requestId, faults: sec.faults });
  return requestId;
}

/** The host name of a Host header (`name:port`, `[v6]:port`), lower-cased, without a trailing dot. */
function hostName(header: string): string {
  const name = header.startsWith('[') ? header.slice(1, header.indexOf(']')) : header.split(':')[0]!;
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * DNS rebinding points a name the attacker controls at this hub, so the browser sends that name as
 * Host: only names the hub knows are served. An IP address is always accepted (a rebinding needs a
 * name), as are `localhost`, the bind address, and `ALLOWED_HOSTS`. The port is not compared: the
 * name is what a rebinding changes, and a proxy may publish another port.
 */
export function hostRule(bindHost: string, allowedHosts: readonly string[]): (host: string) => boolean {
  const names = new Set(['localhost', bindHost.toLowerCase(), ...allowedHosts.map((h) => h.toLowerCase())]);
  return (host) => {
    // HTTP/1.0 clients may send none; browsers always do.
    if (host === '') return true;
    const name = hostName(host);
    return isIP(name) !== 0 || names.has(name);
  };
}

/** A present Origin must be this hub's own (as the browser reached it) or listed in CORS_ORIGINS. */
export function originAllowed(corsOrigins: ReadonlySet<string>, origin: string, host: string): boolean {
  if (origin === '') return true; // not a browser, or a same-origin GET
  if (corsOrigins.has(origin)) return true;
  const own = host.toLowerCase();
  return origin.toLowerCase() === `http://${own}` || origin.toLowerCase() === `https://${own}`;
}

const isJson = (contentType: string) => contentType.split(';')[0]!.trim().toLowerCase() === 'application/json';

/**
 * What a web page could send without a CORS preflight: any Origin, and text/plain or form bodies.
 * State-changing requests therefore need their own Origin (403) and JSON bodies the JSON type (415).
 */
export function browserCheck(
  sec: HttpSecurity,
  req: HttpRequest,
  host: string,
  takesBody: boolean,
  optionalBody: boolean,
): { status: string; code: string; message: string } | null {
  if (!originAllowed(sec.corsOrigins, req.getHeader('origin'), host)) {
    return { status: '403 Forbidden', code: 'origin_not_allowed', message: 'requests from this Origin are not allowed (CORS_ORIGINS)' };
  }
  if (!takesBody) return null;
  const length = req.getHeader('content-length');
  const hasBody = req.getHeader('transfer-encoding') !== '' || (length !== '' && length !== '0');
  if ((hasBody || !optionalBody) && !isJson(req.getHeader('content-type'))) {
    return { status: '415 Unsupported Media Type', code: 'unsupported_media_type', message: 'send the body as Content-Type: application/json' };
  }
  return null;
}

/** CORS preflight: allowed origins get the methods and headers the API uses. */
export function sendCors(sec: HttpSecurity, res: HttpResponse, origin: string): void {
  if (!origin || !sec.corsOrigins.has(origin)) {
    sec.metrics.httpRefused.inc({ code: 'origin_not_allowed' });
    sendJson(res, '403 Forbidden', { detail: 'origin not allowed', error: { code: 'origin_not_allowed', message: 'origin not allowed' } });
    return;
  }
  res.writeStatus('204 No Content');
  res.writeHeader('access-control-allow-origin', origin);
  res.writeHeader('vary', 'Origin');
  res.writeHeader('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS');
  res.writeHeader('access-control-allow-headers', 'content-type, x-api-key, authorization, x-request-id, idempotency-key');
  res.writeHeader('access-control-max-age', '600');
  res.end();
}
