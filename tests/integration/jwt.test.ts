import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';
import { letTimePass } from '../helpers/wait.js';

/**
 * JWTs of the user's own app on REST and WebSocket: an HS256 secret and an ES256 key served as a
 * JWKS by a real HTTP server here; valid, expired, wrongly signed and device-limited tokens; a
 * session that ends with 4440 at `exp`; a key rotation found by refetching for an unknown `kid`.
 */

const SECRET = 's'.repeat(40);
const ISSUER = 'https://login.example.test';
const AUDIENCE = 'vigil-test';
const databases = freshDatabases();
afterAll(() => databases.dropAll());

/** A JWKS endpoint that counts its fetches; its keys can be changed (rotation). */
class JwksServer {
  fetches = 0;
  keys: JWK[] = [];
  private server: Server | null = null;
  port = 0;
  async start(): Promise<void> {
    this.server = createServer((_req, res) => {
      this.fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }
  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

async function es256Key(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } as JWK };
}

async function rs256Key(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } as JWK };
}

type Signer = Awaited<ReturnType<typeof rs256Key>>;
const rs256 = (payload: JWTPayload, key: Signer) => new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: key.jwk.kid! }).sign(key.privateKey);

const nowS = () => Math.floor(Date.now() / 1000);

function claims(extra: JWTPayload = {}): JWTPayload {
  return { sub: `user-${randomSuffix()}`, scope: 'read command', iss: ISSUER, aud: AUDIENCE, exp: nowS() + 600, ...extra };
}

const hs256 = (payload: JWTPayload, secret = SECRET) => new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));

describe('JWTs (HS256 secret and ES256 JWKS)', () => {
  let hub: RunningHub;
  const jwks = new JwksServer();
  let signer: Awaited<ReturnType<typeof es256Key>>;
  let rsa: Signer;
  const clients: TestClient[] = [];
  const own = `jwt-own-${randomSuffix()}`;
  const other = `jwt-other-${randomSuffix()}`;

  const es256 = (payload: JWTPayload, key = signer) => new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: key.jwk.kid! }).sign(key.privateKey);
  const call = (path: string, token: string, init: { method?: string; body?: unknown } = {}) =>
    fetch(httpUrl(hub, path), {
      method: init.method ?? 'GET',
      headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  const connect = async (query = '') => {
    const client = await TestClient.connect(`${wsUrl(hub)}${query}`);
    clients.push(client);
    return client;
  };
  /** The status of a WebSocket upgrade that was refused (the ws client's unexpected-response). */
  const refusedUpgrade = (token: string) =>
    TestClient.connect(`${wsUrl(hub)}?token=${encodeURIComponent(token)}`).then(
      () => 'opened',
      (error: Error) => error.message,
    );
  const metric = async (sample: string) => {
    const text = await (await call('/metrics', await hs256(claims({ scope: 'read' })))).text();
    return Number(text.split('\n').find((l) => l.startsWith(`${sample} `))?.split(' ')[1] ?? 0);
  };

  beforeAll(async () => {
    signer = await es256Key('k1');
    rsa = await rs256Key('r1');
    jwks.keys = [signer.jwk, rsa.jwk];
    await jwks.start();
    hub = await startTestHub('services', {
      DATABASE_URL: await databases.create(),
      HTTP_RATE_PER_S: '100000',
      HTTP_RATE_BURST: '100000',
      JWT_HS256_SECRET: SECRET,
      JWT_JWKS_URL: `http://127.0.0.1:${jwks.port}/.well-known/jwks.json`,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      JWT_CLOCK_SKEW_S: '0',
      JWT_JWKS_COOLDOWN_S: '2',
    });
    // Both devices exist (an ingest-scoped token writes them).
    const ingest = await hs256(claims({ scope: 'ingest' }));
    for (const device of [own, other]) expect((await call('/status', ingest, { method: 'POST', body: { device_id: device, battery_level: 50 } })).status).toBe(200);
  }, 120_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await hub?.stop();
    await jwks.stop();
  });

  it('turns authentication on with no API key: no token is a 401, an unauthenticated socket must send auth', async () => {
    const none = await call('/status/summary', '');
    expect(none.status).toBe(401);
    const client = await connect();
    const refused = await client.request({ type: 'subscribe_device', device_id: own }, 1);
    expect(refused).toMatchObject({ type: 'error', error: { code: 'unauthenticated' } });
  });

  it('accepts valid HS256 and ES256 (JWKS) tokens on REST, with their scopes', async () => {
    for (const token of [await hs256(claims()), await es256(claims())]) {
      const summary = await call('/status/summary', token);
      expect(summary.status).toBe(200);
      expect((await call(`/status/${own}`, token)).status).toBe(200);
      // `read command` grants no ingest.
      const write = await call('/status', token, { method: 'POST', body: { device_id: own, battery_level: 40 } });
      expect(write.status).toBe(403);
    }
    // A scope prefix other than JWT_SCOPE_PREFIX ('') or an unknown scope grants nothing.
    expect((await call('/status/summary', await hs256(claims({ scope: 'openid vigil:read' })))).status).toBe(403);
    // A JWT is its own WebSocket token: POST /ws-token does not mint one that could not verify.
    const wsToken = await call('/ws-token', await hs256(claims()), { method: 'POST', body: {} });
    expect(wsToken.status).toBe(409);
    // An array claim works like the space-separated string.
    expect((await call('/status/summary', await hs256(claims({ scope: ['read'] })))).status).toBe(200);
  });

  it('accepts RS256 tokens from the JWKS on REST and WebSocket; refuses one signed by another RSA key', async () => {
    const token = await rs256(claims(), rsa);
    expect((await call('/status/summary', token)).status).toBe(200);
    expect((await call(`/status/${own}`, token)).status).toBe(200);
    const client = await connect(`?token=${token}`);
    expect((await client.request({ type: 'subscribe_device', device_id: own }, 1)).type).toBe('ack');
    const impostor = await rs256Key('r1'); // same kid, another key
    const forged = await rs256(claims(), impostor);
    expect((await call('/status/summary', forged)).status).toBe(401);
    expect(await refusedUpgrade(forged)).toContain('401');
  });

  it('refuses a token whose nbf is still to come (JWT_CLOCK_SKEW_S=0 here) on REST and at the upgrade', async () => {
    const early = await rs256(claims({ nbf: nowS() + 60 }), rsa);
    const response = await call('/status/summary', early);
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain('nbf');
    expect(await refusedUpgrade(early)).toContain('401');
    // Once nbf has passed, the same claims work.
    expect((await call('/status/summary', await rs256(claims({ nbf: nowS() - 1 }), rsa))).status).toBe(200);
  });

  it('refuses expired, wrongly signed, wrong-issuer and wrong-audience tokens with 401', async () => {
    const attacker = await es256Key('k1'); // same kid, another key
    const bad: Record<string, string> = {
      expired: await hs256(claims({ exp: nowS() - 5 })),
      'wrong secret': await hs256(claims(), 'x'.repeat(40)),
      'wrong ES256 key': await es256(claims(), attacker),
      'wrong issuer': await hs256(claims({ iss: 'https://evil.test' })),
      'wrong audience': await hs256(claims({ aud: 'someone-else' })),
      'no exp': await hs256({ sub: 'u', scope: 'read', iss: ISSUER, aud: AUDIENCE }),
      'alg none': `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.x`,
    };
    const before = await metric('vigil_jwt_verifications_total{outcome="expired"}');
    for (const [label, token] of Object.entries(bad)) {
      const response = await call('/status/summary', token);
      expect(response.status, label).toBe(401);
      const body = (await response.json()) as { error: { code: string } };
      expect(body.error.code, label).toMatch(/^invalid_(token|key)$/);
      expect(await refusedUpgrade(token), label).toContain('401');
    }
    expect(await metric('vigil_jwt_verifications_total{outcome="expired"}')).toBeGreaterThanOrEqual(before + 2);
    expect(await metric('vigil_jwt_verifications_total{outcome="bad_signature"}')).toBeGreaterThanOrEqual(2);
  });

  it('limits a token with a devices claim to those devices (REST, bodies, fleet data, WebSocket)', async () => {
    const limited = await es256(claims({ vigil_devices: [own] }));
    expect((await call(`/status/${own}`, limited)).status).toBe(200);
    expect((await call(`/status/${other}`, limited)).status).toBe(403);
    expect((await call('/status/batch', limited, { method: 'POST', body: { device_ids: [other] } })).status).toBe(403);
    expect((await call('/status/batch', limited, { method: 'POST', body: { device_ids: [own] } })).status).toBe(200);
    expect((await call('/metrics', limited)).status).toBe(403); // fleet-wide
    const listed = (await (await call('/devices', limited)).json()) as { devices: { device_id: string }[] };
    expect(listed.devices.map((d) => d.device_id)).toEqual([own]);

    const client = await connect(`?token=${limited}`);
    expect((await client.request({ type: 'subscribe_device', device_id: own }, 1)).type).toBe('ack');
    expect(await client.request({ type: 'subscribe_device', device_id: other }, 2)).toMatchObject({ type: 'error', error: { code: 'forbidden' } });
    expect(await client.request({ type: 'subscribe_all' }, 3)).toMatchObject({ type: 'error', error: { code: 'forbidden' } });
    // A malformed devices claim refuses the token rather than widening it.
    expect((await call(`/status/${own}`, await es256(claims({ vigil_devices: 'ok bad/id' })))).status).toBe(401);
    expect((await call(`/status/${own}`, await es256(claims({ vigil_devices: { own: true } })))).status).toBe(401);
  });

  it('authenticates a socket by an auth message; messages sent before the verification ended wait for it', async () => {
    const client = await connect();
    client.send({ type: 'auth', token: await es256(claims()), id: 1 });
    client.send({ type: 'subscribe_device', device_id: own, id: 2 });
    expect((await client.next((f) => f.id === 1)).type).toBe('ack');
    expect((await client.next((f) => f.id === 2)).type).toBe('ack');
    const forged = await connect();
    forged.send({ type: 'auth', token: await hs256(claims(), 'y'.repeat(40)), id: 1 });
    expect(await forged.next((f) => f.id === 1)).toMatchObject({ type: 'error', error: { code: 'invalid_token' } });
    expect(await forged.waitClose()).toBe(4401);
  });

  it('authenticates a socket by an auth message carrying a long JWT (claims past 512 characters)', async () => {
    const devices = [own, ...Array.from({ length: 40 }, (_, i) => `extra-device-${i}`)];
    const token = await es256(claims({ vigil_devices: devices, name: 'A user with a long display name', email: 'someone@login.example.test' }));
    expect(token.length).toBeGreaterThan(1000);
    const client = await connect();
    expect(await client.request({ type: 'auth', token }, 1)).toMatchObject({ type: 'ack' });
    expect((await client.request({ type: 'subscribe_device', device_id: own }, 2)).type).toBe('ack');
  });

  it('ends a live session at the token exp with 4440, unless renewed by a fresh token of the same subject', async () => {
    const sub = `user-${randomSuffix()}`;
    const exp = nowS() + 3;
    const lapsing = await connect(`?token=${await hs256(claims({ sub, exp }))}`);
    expect((await lapsing.request({ type: 'subscribe_device', device_id: own }, 1)).type).toBe('ack');
    const renewing = await connect(`?token=${await hs256(claims({ sub, exp }))}`);
    expect((await renewing.request({ type: 'auth', token: await es256(claims({ sub, exp: exp + 3 })) }, 1)).type).toBe('ack');
    // Another subject may not take over the session.
    expect(await renewing.request({ type: 'auth', token: await hs256(claims()) }, 2)).toMatchObject({ type: 'error', error: { code: 'forbidden' } });
    expect(await lapsing.waitClose(10_000)).toBe(4440);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
    expect(Date.now()).toBeLessThan(exp * 1000 + 2500);
    expect(renewing.closeCode).toBeNull();
    expect(await renewing.waitClose(10_000)).toBe(4440);
  }, 30_000);

  it('finds a rotated key by fetching the JWKS again for an unknown kid, at most once per cooldown', async () => {
    const rotated = await es256Key(`k2-${randomSuffix()}`);
    const unknown = await es256Key(`k3-${randomSuffix()}`);
    jwks.keys = [signer.jwk, rotated.jwk];
    const before = jwks.fetches;
    // Let the cooldown since the first fetch pass, then: one refetch finds k2.
    await letTimePass(2100, 'the JWKS refetch cooldown since the first fetch passes');
    expect((await call('/status/summary', await es256(claims(), rotated))).status).toBe(200);
    expect(jwks.fetches).toBe(before + 1);
    // Unknown kids within the cooldown do not fetch again (a flood of made-up kids costs the IdP nothing).
    for (let i = 0; i < 5; i++) expect((await call('/status/summary', await es256(claims(), unknown))).status).toBe(401);
    expect(jwks.fetches).toBe(before + 1);
  }, 30_000);
});

describe('JWTs on a hub with only JWT_JWKS_URL and a clock skew (JWT_CLOCK_SKEW_S=30)', () => {
  let hub: RunningHub;
  const jwks = new JwksServer();
  let rsa: Signer;
  const clients: TestClient[] = [];
  const call = (path: string, token: string) => fetch(httpUrl(hub, path), { headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    rsa = await rs256Key('r1');
    jwks.keys = [rsa.jwk];
    await jwks.start();
    hub = await startTestHub('services', {
      DATABASE_URL: await databases.create(),
      JWT_JWKS_URL: `http://127.0.0.1:${jwks.port}/.well-known/jwks.json`,
      JWT_CLOCK_SKEW_S: '30',
    });
  }, 120_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await hub?.stop();
    await jwks.stop();
  });

  it('refuses HS256 tokens: no secret is set, and the public keys are never used as one', async () => {
    const pem = await exportSPKI(rsa.publicKey);
    for (const secret of [SECRET, pem]) {
      const token = await hs256({ sub: 'u', scope: 'read', exp: nowS() + 600 }, secret);
      const response = await call('/status/summary', token);
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_token');
      const upgrade = await TestClient.connect(`${wsUrl(hub)}?token=${encodeURIComponent(token)}`).then(() => 'opened', (error: Error) => error.message);
      expect(upgrade).toContain('401');
    }
    expect((await call('/status/summary', await rs256({ sub: 'u', scope: 'read', exp: nowS() + 600 }, rsa))).status).toBe(200);
  });

  it('accepts a token expired within the skew, and its WebSocket session lives until exp + skew (no 4440 at the next check)', async () => {
    const exp = nowS() - 5;
    const token = await rs256({ sub: `user-${randomSuffix()}`, scope: 'read', exp }, rsa);
    expect((await call('/status/summary', token)).status).toBe(200);
    const client = await TestClient.connect(`${wsUrl(hub)}?token=${token}`);
    clients.push(client);
    expect((await client.request({ type: 'subscribe_all' }, 1)).type).toBe('ack');
    await letTimePass(2500, 'the once-a-second session expiry check runs at least twice');
    expect(client.closeCode).toBeNull();
    expect((await client.request({ type: 'unsubscribe_all' }, 2)).type).toBe('ack');
    // Beyond the skew it is refused, as everywhere.
    expect((await call('/status/summary', await rs256({ sub: 'u', scope: 'read', exp: nowS() - 40 }, rsa))).status).toBe(401);
  }, 30_000);
});
