import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { afterEach, expect, it } from 'vitest';
import { JwtVerifier, MAX_JWKS_BYTES, MAX_JWT_BYTES, type JwtSettings } from '../../src/security/jwt.js';

/** The verifier alone: what is a JWT, and a JWKS that does not answer (timeout) or is not there. */

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const settings = (over: Partial<JwtSettings>): JwtSettings => ({
  hs256Secret: undefined,
  jwksUrl: undefined,
  issuer: undefined,
  audience: undefined,
  clockSkewS: 0,
  scopeClaim: 'scope',
  scopePrefix: '',
  devicesClaim: 'vigil_devices',
  jwksTimeoutMs: 300,
  jwksCacheS: 600,
  jwksCooldownS: 30,
  ...over,
});

async function es256Token(): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256');
  return new SignJWT({ sub: 'u', scope: 'read', exp: Math.floor(Date.now() / 1000) + 60 }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).sign(privateKey);
}

async function listen(handler: Parameters<typeof createServer>[1]): Promise<number> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

it('is off without a secret or a JWKS URL', () => {
  expect(JwtVerifier.fromSettings(settings({}), () => undefined)).toBeNull();
});

it('tells JWTs from API keys, ws-tokens and junk', async () => {
  const verifier = JwtVerifier.fromSettings(settings({ hs256Secret: 'x'.repeat(32) }), () => undefined)!;
  expect(verifier.looksLikeJwt(await es256Token())).toBe(true);
  expect(verifier.looksLikeJwt(`vgl_${'a'.repeat(12)}_${'b'.repeat(43)}`)).toBe(false);
  expect(verifier.looksLikeJwt('abcdefghijkl.1767225600000.c2lnbmF0dXJl')).toBe(false); // a ws-token
  expect(verifier.looksLikeJwt('a.b.c')).toBe(false);
  const huge = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${'a'.repeat(MAX_JWT_BYTES)}.x`;
  expect(verifier.looksLikeJwt(huge)).toBe(false);
});

it('says keys_unavailable when the JWKS does not answer within JWT_JWKS_TIMEOUT_MS, or is not there', async () => {
  const counted: string[] = [];
  const hanging = await listen(() => undefined); // never answers
  const slow = JwtVerifier.fromSettings(settings({ jwksUrl: `http://127.0.0.1:${hanging}/jwks` }), (o) => counted.push(o))!;
  const started = Date.now();
  expect(await slow.verify(await es256Token())).toMatchObject({ ok: false, reason: 'keys_unavailable' });
  expect(Date.now() - started).toBeLessThan(3000);
  const broken = await listen((_req, res) => res.writeHead(500).end('no'));
  const failing = JwtVerifier.fromSettings(settings({ jwksUrl: `http://127.0.0.1:${broken}/jwks` }), (o) => counted.push(o))!;
  expect(await failing.verify(await es256Token())).toMatchObject({ ok: false, reason: 'keys_unavailable' });
  expect(counted).toEqual(['keys_unavailable', 'keys_unavailable']);
});

it('says unknown_key when the JWKS has no key for the kid', async () => {
  const { publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'other', alg: 'ES256' };
  const port = await listen((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
  const verifier = JwtVerifier.fromSettings(settings({ jwksUrl: `http://127.0.0.1:${port}/jwks` }), () => undefined)!;
  expect(await verifier.verify(await es256Token())).toMatchObject({ ok: false, reason: 'unknown_key' });
});

const hs256 = (payload: Record<string, unknown>) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(32)));

it('refuses a sub that is not a string: 123, ["alice"] or true must not name the principals "123", "alice" or "true"', async () => {
  const verifier = JwtVerifier.fromSettings(settings({ hs256Secret: 'x'.repeat(32) }), () => undefined)!;
  const exp = Math.floor(Date.now() / 1000) + 60;
  for (const sub of [123, ['alice'], true, { length: 3 }, null]) {
    expect(await verifier.verify(await hs256({ sub, exp, scope: 'read' })), JSON.stringify(sub)).toMatchObject({ ok: false, reason: 'bad_claims' });
  }
  expect(await verifier.verify(await hs256({ sub: 'alice', exp, scope: 'read' }))).toMatchObject({ ok: true, credentials: { principal: { key: { id: 'jwt:alice', name: 'alice' } } } });
});

it('stops reading a JWKS past MAX_JWKS_BYTES (keys_unavailable) instead of holding a huge answer in memory', async () => {
  let sent = 0;
  const port = await listen((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"keys":[');
    const chunk = `{"kty":"oct","k":"${'A'.repeat(64 * 1024)}"},`;
    const more = () => {
      // 64 MiB in all unless the hub stops reading (the socket closes, writes fail).
      while (sent < 1024 && !res.destroyed) {
        sent++;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end('{"kty":"oct","k":"AA"}]}');
    };
    more();
  });
  const counted: string[] = [];
  const verifier = JwtVerifier.fromSettings(settings({ jwksUrl: `http://127.0.0.1:${port}/jwks`, jwksTimeoutMs: 20_000 }), (o) => counted.push(o))!;
  expect(await verifier.verify(await es256Token())).toMatchObject({ ok: false, reason: 'keys_unavailable' });
  expect(counted).toEqual(['keys_unavailable']);
  // The hub gave up after about MAX_JWKS_BYTES, not after the whole answer.
  expect(sent * 64 * 1024).toBeLessThan(MAX_JWKS_BYTES * 8);
});

it('gives up on a JWKS that sends its answer a byte at a time within JWT_JWKS_TIMEOUT_MS', async () => {
  const port = await listen((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write(' ')), 50);
    res.on('close', () => clearInterval(drip));
  });
  const verifier = JwtVerifier.fromSettings(settings({ jwksUrl: `http://127.0.0.1:${port}/jwks`, jwksTimeoutMs: 300 }), () => undefined)!;
  const started = Date.now();
  expect(await verifier.verify(await es256Token())).toMatchObject({ ok: false, reason: 'keys_unavailable' });
  expect(Date.now() - started).toBeLessThan(3000);
});

it('reads only the token\'s own claims: a claim name Object.prototype also has is absent unless the token holds it', async () => {
  const exp = Math.floor(Date.now() / 1000) + 60;
  const scopesOf = (o: Awaited<ReturnType<JwtVerifier['verify']>>) => (o.ok && o.credentials.principal.kind === 'key' ? [...o.credentials.principal.key.scopes] : null);
  for (const name of ['constructor', 'toString', 'hasOwnProperty']) {
    const byScope = JwtVerifier.fromSettings(settings({ hs256Secret: 'x'.repeat(32), scopeClaim: name }), () => undefined)!;
    const none = await byScope.verify(await hs256({ sub: 'u', exp }));
    expect(none, name).toMatchObject({ ok: true });
    expect(scopesOf(none), name).toEqual([]);
    const read = await byScope.verify(await hs256({ sub: 'u', exp, [name]: 'read' }));
    expect(scopesOf(read), name).toEqual(['read']);
    const byDevices = JwtVerifier.fromSettings(settings({ hs256Secret: 'x'.repeat(32), devicesClaim: name }), () => undefined)!;
    expect(await byDevices.verify(await hs256({ sub: 'u', exp, scope: 'read' })), name).toMatchObject({ ok: true, credentials: { principal: { key: { deviceIds: null } } } });
  }
});

it('says keys_unavailable for a JWKS answering 204, 304, a redirect or garbage', async () => {
  const answers: [number, string][] = [[204, ''], [304, ''], [302, ''], [200, 'not json'], [200, '{"keys":"x"}'], [200, '[]'], [200, 'null']];
  for (const [status, body] of answers) {
    const port = await listen((_req, res) => res.writeHead(status, status === 302 ? { location: 'http://127.0.0.1:1/' } : { 'content-type': 'application/json' }).end(status === 200 ? body : undefined));
    const verifier = JwtVerifier.fromSettings(settings({ jwksUrl: `http://127.0.0.1:${port}/jwks` }), () => undefined)!;
    expect(await verifier.verify(await es256Token()), `${status} ${body}`).toMatchObject({ ok: false, reason: 'keys_unavailable' });
  }
});

it('applies JWT_CLOCK_SKEW_S to exp and nbf, and a session it opens lives until exp + the skew (not closed 4440 at once)', async () => {
  const nowS = Math.floor(Date.now() / 1000);
  const skewed = JwtVerifier.fromSettings(settings({ hs256Secret: 'x'.repeat(32), clockSkewS: 30 }), () => undefined)!;
  const strict = JwtVerifier.fromSettings(settings({ hs256Secret: 'x'.repeat(32), clockSkewS: 0 }), () => undefined)!;
  // Expired 10 s ago by the issuer's clock: inside a 30 s skew.
  const lately = await hs256({ sub: 'u', scope: 'read', exp: nowS - 10 });
  const accepted = await skewed.verify(lately);
  expect(accepted).toMatchObject({ ok: true });
  const expiresAt = accepted.ok ? accepted.credentials.expiresAt! : 0;
  expect(expiresAt).toBe((nowS - 10 + 30) * 1000);
  expect(expiresAt).toBeGreaterThan(Date.now() + 15_000);
  // The session check (src/hub/session-auth.ts) closes when now >= expiresAt: not now.
  expect(Date.now() >= expiresAt).toBe(false);
  expect(await strict.verify(lately)).toMatchObject({ ok: false, reason: 'expired' });
  // Past the skew: refused.
  expect(await skewed.verify(await hs256({ sub: 'u', scope: 'read', exp: nowS - 40 }))).toMatchObject({ ok: false, reason: 'expired' });
  // nbf in the future: refused beyond the skew, accepted within it.
  const exp = nowS + 600;
  expect(await skewed.verify(await hs256({ sub: 'u', exp, nbf: nowS + 120 }))).toMatchObject({ ok: false, reason: 'bad_claims', message: expect.stringContaining('"nbf"') });
  expect(await skewed.verify(await hs256({ sub: 'u', exp, nbf: nowS + 10 }))).toMatchObject({ ok: true });
  expect(await strict.verify(await hs256({ sub: 'u', exp, nbf: nowS + 10 }))).toMatchObject({ ok: false, reason: 'bad_claims' });
  // iat is not judged (no maxTokenAge): one in the future or long past passes; only its type is checked.
  expect(await strict.verify(await hs256({ sub: 'u', exp, iat: nowS + 3600 }))).toMatchObject({ ok: true });
  expect(await strict.verify(await hs256({ sub: 'u', exp, iat: nowS - 30 * 86_400 }))).toMatchObject({ ok: true });
  expect(await strict.verify(await hs256({ sub: 'u', exp, iat: 'yesterday' }))).toMatchObject({ ok: false, reason: 'bad_claims' });
});

it('refuses an HS256 token on a hub with only JWT_JWKS_URL, even one signed with the JWKS public key as its secret (algorithm confusion)', async () => {
  const { publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'r1', alg: 'RS256', use: 'sig' };
  let fetches = 0;
  const port = await listen((_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  const counted: string[] = [];
  const verifier = JwtVerifier.fromSettings(settings({ jwksUrl: `http://127.0.0.1:${port}/jwks` }), (o) => counted.push(o))!;
  const exp = Math.floor(Date.now() / 1000) + 60;
  const pem = await exportSPKI(publicKey);
  for (const [label, secret] of [['the public key PEM', pem], ['the JWK modulus', jwk.n!], ['any secret', 'x'.repeat(32)]] as const) {
    const token = await new SignJWT({ sub: 'u', scope: 'admin', exp }).setProtectedHeader({ alg: 'HS256', kid: 'r1' }).sign(new TextEncoder().encode(secret));
    expect(await verifier.verify(token), label).toMatchObject({ ok: false, reason: 'bad_signature' });
  }
  expect(counted).toEqual(['bad_signature', 'bad_signature', 'bad_signature']);
  // Refused by its algorithm before any key is looked up.
  expect(fetches).toBe(0);
});
