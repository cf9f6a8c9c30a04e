import { createSecretKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, customFetch, decodeProtectedHeader, errors, jwtVerify, type JWTHeaderParameters, type JWTPayload, type KeyInput } from 'jose';
import type { Config } from '../config.js';
import { isDeviceId } from '../domain/device-id.js';
import type { ApiKey, Credentials, Scope } from './api-keys.js';
import { SCOPES } from './api-keys.js';

/**
 * JWTs made by the user's own app (their login, their identity provider) accepted wherever an API
 * key is: REST (`Authorization: Bearer`, `X-API-Key`) and WebSocket (`?token=`, `auth` message).
 * Verification is jose's (signature, `exp`/`nbf` with JWT_CLOCK_SKEW_S, `iss`, `aud`; `iat` only
 * has to be a number: jose judges its age only with maxTokenAge, which the hub does not set); this
 * file only maps the claims to the same principal an API key is, so src/security/policy.ts decides
 * for both. A session lives until `exp` + JWT_CLOCK_SKEW_S, as long as the token is accepted.
 *
 * - HS256 with JWT_HS256_SECRET, and/or RS256/ES256 with keys from JWT_JWKS_URL (fetched with a
 *   timeout, cached JWT_JWKS_CACHE_S, fetched again for an unknown `kid` at most every
 *   JWT_JWKS_COOLDOWN_S: jose's remote key set).
 * - `sub` and `exp` are required: the principal is named by `sub`, and every session ends at `exp`.
 * - Scopes: JWT_SCOPE_CLAIM (a space-separated string or an array), each a Vigil scope after
 *   JWT_SCOPE_PREFIX; others are ignored (a token with none may do nothing but is not refused).
 * - Devices: JWT_DEVICES_CLAIM (an array of device ids or a space-separated string) limits the
 *   principal to those devices as `deviceIds` limits a key; absent: not limited.
 */

/** Principal ids of JWTs start with this (API key ids are 12 letters and digits: they never do). */
export const JWT_PRINCIPAL_PREFIX = 'jwt:';
export const isJwtPrincipalId = (id: string): boolean => id.startsWith(JWT_PRINCIPAL_PREFIX);

/** Longer tokens are refused before any parsing (headers are bounded too: HTTP_MAX_HEADER_BYTES). */
export const MAX_JWT_BYTES = 8192;
const MAX_SUBJECT_CHARS = 256;
const MAX_TOKEN_DEVICES = 10_000;
const MAX_SCOPE_ENTRIES = 256;
/** A JWKS answer longer than this is not read on (a real one holds a few keys: a few KiB). */
export const MAX_JWKS_BYTES = 1024 * 1024;

/** Why a token was refused; `vigil_jwt_verifications_total{outcome}` counts each (and `accepted`). */
export type JwtRefusal = 'malformed' | 'expired' | 'bad_signature' | 'bad_claims' | 'unknown_key' | 'keys_unavailable';
export type JwtOutcome = { readonly ok: true; readonly credentials: Credentials } | { readonly ok: false; readonly reason: JwtRefusal; readonly message: string };

const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface JwtSettings {
  readonly hs256Secret: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  readonly clockSkewS: number;
  readonly scopeClaim: string;
  readonly scopePrefix: string;
  readonly devicesClaim: string;
  readonly jwksTimeoutMs: number;
  readonly jwksCacheS: number;
  readonly jwksCooldownS: number;
}

export const jwtSettings = (config: Config): JwtSettings => ({
  hs256Secret: config.JWT_HS256_SECRET,
  jwksUrl: config.JWT_JWKS_URL,
  issuer: config.JWT_ISSUER,
  audience: config.JWT_AUDIENCE,
  clockSkewS: config.JWT_CLOCK_SKEW_S,
  scopeClaim: config.JWT_SCOPE_CLAIM,
  scopePrefix: config.JWT_SCOPE_PREFIX,
  devicesClaim: config.JWT_DEVICES_CLAIM,
  jwksTimeoutMs: config.JWT_JWKS_TIMEOUT_MS,
  jwksCacheS: config.JWT_JWKS_CACHE_S,
  jwksCooldownS: config.JWT_JWKS_COOLDOWN_S,
});

type KeyLookup = (header: JWTHeaderParameters) => Promise<KeyInput> | KeyInput;

export class JwtVerifier {
  private readonly secret: KeyObject | null;
  private readonly remote: ReturnType<typeof createRemoteJWKSet> | null;
  private readonly algorithms: string[];

  /** Null when neither JWT_HS256_SECRET nor JWT_JWKS_URL is set (no JWT is accepted). */
  static fromSettings(settings: JwtSettings, count: (outcome: JwtRefusal | 'accepted') => void): JwtVerifier | null {
    return settings.hs256Secret === undefined && settings.jwksUrl === undefined ? null : new JwtVerifier(settings, count);
  }

  private constructor(
    private readonly settings: JwtSettings,
    private readonly count: (outcome: JwtRefusal | 'accepted') => void,
  ) {
    this.secret = settings.hs256Secret === undefined ? null : createSecretKey(Buffer.from(settings.hs256Secret));
    this.remote =
      settings.jwksUrl === undefined
        ? null
        : createRemoteJWKSet(new URL(settings.jwksUrl), {
            timeoutDuration: settings.jwksTimeoutMs,
            cacheMaxAge: settings.jwksCacheS * 1000,
            cooldownDuration: settings.jwksCooldownS * 1000,
            [customFetch]: boundedFetch,
          });
    // Each key source only for its own algorithms: an HS256 token is never checked against a public
    // key (algorithm confusion), nor an RS256 one against the secret.
    this.algorithms = [...(this.secret ? ['HS256'] : []), ...(this.remote ? ['RS256', 'ES256'] : [])];
  }

  /**
   * Whether a presented credential is meant as a JWT (three base64url parts whose first is a JOSE
   * header): only those are verified here, so API keys and ws-tokens keep their synchronous path.
   */
  looksLikeJwt(token: string): boolean {
    if (token.length > MAX_JWT_BYTES || !JWS_COMPACT.test(token)) return false;
    try {
      return typeof decodeProtectedHeader(token).alg === 'string';
    } catch {
      return false;
    }
  }

  async verify(token: string): Promise<JwtOutcome> {
    const outcome = await this.check(token);
    this.count(outcome.ok ? 'accepted' : outcome.reason);
    return outcome;
  }

  private async check(token: string): Promise<JwtOutcome> {
    if (!this.looksLikeJwt(token)) return refused('malformed', 'not a JWT (compact JWS)');
    const lookup: KeyLookup = (header) => {
      if (header.alg === 'HS256' && this.secret) return this.secret;
      if (this.remote) return this.remote(header);
      throw new errors.JOSEAlgNotAllowed('algorithm not allowed');
    };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, lookup, {
        algorithms: this.algorithms,
        clockTolerance: this.settings.clockSkewS,
        requiredClaims: ['sub', 'exp'],
        ...(this.settings.issuer === undefined ? {} : { issuer: this.settings.issuer }),
        ...(this.settings.audience === undefined ? {} : { audience: this.settings.audience }),
      }));
    } catch (error) {
      return describeFailure(error);
    }
    return this.principalOf(payload);
  }

  /** The claims as the principal an API key would be: scopes and, when the claim is there, devices. */
  private principalOf(payload: JWTPayload): JwtOutcome {
    const sub = payload.sub;
    // jose checks that sub is present, not its type: 123 or ["alice"] would name "jwt:123" or "jwt:alice".
    if (typeof sub !== 'string') return refused('bad_claims', '"sub" must be a string');
    if (sub.length === 0 || sub.length > MAX_SUBJECT_CHARS) return refused('bad_claims', `"sub" must be 1-${MAX_SUBJECT_CHARS} characters`);
    const scopes = listClaim(ownClaim(payload, this.settings.scopeClaim), MAX_SCOPE_ENTRIES);
    if (scopes === 'invalid') return refused('bad_claims', `"${this.settings.scopeClaim}" must be a space-separated string or an array of strings (at most ${MAX_SCOPE_ENTRIES})`);
    const granted = new Set<Scope>();
    for (const entry of scopes ?? []) {
      if (!entry.startsWith(this.settings.scopePrefix)) continue;
      const scope = entry.slice(this.settings.scopePrefix.length);
      if ((SCOPES as readonly string[]).includes(scope)) granted.add(scope as Scope);
    }
    const devices = listClaim(ownClaim(payload, this.settings.devicesClaim), MAX_TOKEN_DEVICES);
    if (devices === 'invalid' || (devices !== null && !devices.every(isDeviceId))) {
      return refused('bad_claims', `"${this.settings.devicesClaim}" must be device ids (1-128 of [A-Za-z0-9._:-]), as an array or space-separated, at most ${MAX_TOKEN_DEVICES}`);
    }
    const key: ApiKey = {
      id: `${JWT_PRINCIPAL_PREFIX}${sub}`,
      name: sub,
      scopes: granted,
      deviceIds: devices === null ? null : new Set(devices),
      createdAt: typeof payload.iat === 'number' ? payload.iat * 1000 : Date.now(),
    };
    // Accepted until exp + JWT_CLOCK_SKEW_S (jose's clockTolerance), so a session lives as long: with
    // exp alone, a token accepted inside the skew would open a session closed 4440 at the next check.
    return { ok: true, credentials: { principal: { kind: 'key', key }, expiresAt: (payload.exp! + this.settings.clockSkewS) * 1000 } };
  }
}

/**
 * fetch for the JWKS that reads at most MAX_JWKS_BYTES of the answer: jose reads it whole with
 * `response.json()`, so an endpoint streaming a huge body would otherwise be held in memory (the
 * timeout bounds only how long, not how much). Past the bound the read stops and the token is
 * refused as keys_unavailable.
 */
async function boundedFetch(url: string, init: RequestInit): Promise<Response> {
  const response = await fetch(url, init);
  // jose refuses anything but 200 without reading the body (and a 204 or 304 cannot be rebuilt with one).
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    return response;
  }
  const declared = Number(response.headers.get('content-length') ?? 0);
  const tooLarge = () => new Error(`the JWKS answer is over ${MAX_JWKS_BYTES} bytes`);
  if (declared > MAX_JWKS_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (response.body !== null) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_JWKS_BYTES) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
  }
  return new Response(Buffer.concat(chunks), { status: response.status, statusText: response.statusText, headers: response.headers });
}

const refused = (reason: JwtRefusal, message: string): JwtOutcome => ({ ok: false, reason, message });

/** The token's own claim: a claim name like `constructor` or `toString` must not read Object.prototype's. */
const ownClaim = (payload: JWTPayload, name: string): unknown => (Object.hasOwn(payload, name) ? payload[name] : undefined);

/** A claim holding a list: an array of strings or one space-separated string; null when absent. */
function listClaim(value: unknown, max: number): string[] | null | 'invalid' {
  if (value === undefined) return null;
  const list = typeof value === 'string' ? value.split(' ').filter(Boolean) : value;
  if (!Array.isArray(list) || list.length > max || !list.every((v): v is string => typeof v === 'string')) return 'invalid';
  return list;
}

/** jose's errors as the hub's refusal reasons (the message never echoes the token). */
function describeFailure(error: unknown): JwtOutcome {
  if (error instanceof errors.JWTExpired) return refused('expired', 'the token expired');
  if (error instanceof errors.JWSSignatureVerificationFailed) return refused('bad_signature', 'the signature does not verify');
  if (error instanceof errors.JWTClaimValidationFailed) return refused('bad_claims', `claim "${error.claim}" ${error.reason === 'missing' ? 'is missing' : `failed (${error.reason})`}`);
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) return refused('unknown_key', 'no key of JWT_JWKS_URL matches the token (kid, alg)');
  if (error instanceof errors.JWKSTimeout) return refused('keys_unavailable', 'JWT_JWKS_URL did not answer in time');
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return refused('bad_signature', 'the token\'s algorithm is not accepted here');
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return refused('malformed', 'not a valid JWT');
  if (error instanceof errors.JOSEError) return refused('keys_unavailable', 'the keys of JWT_JWKS_URL could not be read');
  // fetch failing (connection refused, DNS) reaches here as a plain error.
  return refused('keys_unavailable', 'the keys of JWT_JWKS_URL could not be fetched');
}
