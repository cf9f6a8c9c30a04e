import fc from 'fast-check';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Faults } from '../../src/errors/boundary.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import type { ApiKeyStore } from '../../src/security/api-keys.js';
import { RateLimiter } from '../../src/security/rate-limiter.js';
import { hostRule, type HttpSecurity } from '../../src/transport/http/guard.js';
import { sendJson } from '../../src/transport/http/respond.js';
import { mountRoutes, route, type Route } from '../../src/transport/http/router.js';
import { loadUws, type us_listen_socket } from '../../src/transport/uws.js';

/** The route plumbing on a real uWS server with a small table (no hub, no keys: anonymous). */
describe('route table plumbing', () => {
  const uws = loadUws();
  const metrics = createMetrics();
  let socket: us_listen_socket;
  let base = '';
  const routes: Route[] = [
    route({ method: 'GET', path: '/things/{id}', summary: 'a thing', action: 'public', device: 'none', ok: '200', handle: (res, r) => sendJson(res, '200 OK', { id: r.params[0] }) }),
    route({ method: 'DELETE', path: '/things/{id}', summary: 'forget it', action: 'public', device: 'none', ok: '200', handle: (res) => sendJson(res, '200 OK', {}) }),
    route({ method: 'GET', path: '/things/special', summary: 'literal first', action: 'public', device: 'none', ok: '200', handle: (res) => sendJson(res, '200 OK', { special: true }) }),
    route({
      method: 'GET',
      path: '/throws',
      summary: 'a bug',
      action: 'public',
      device: 'none',
      ok: '200',
      handle: () => {
        throw new Error('secret internals: password=hunter2');
      },
    }),
    route({
      method: 'POST',
      path: '/throws-after-body',
      summary: 'a bug after the body',
      action: 'public',
      device: 'none',
      body: z.object({ n: z.number() }),
      ok: '200',
      handle: () => {
        throw new Error('late internals');
      },
    }),
  ];

  beforeAll(async () => {
    const app = uws.App();
    const sec: HttpSecurity = {
      keys: { verify: () => null } as unknown as ApiKeyStore,
      authRequired: () => false,
      limiter: new RateLimiter(10_000, 10_000),
      corsOrigins: new Set(['http://allowed.example']),
      hostAllowed: hostRule('127.0.0.1', ['vigil.example']),
      maxBodyBytes: 1024,
      maxHeaderBytes: 8192,
      metrics,
      faults: new Faults(createLogger('silent'), metrics),
    };
    mountRoutes(app, routes, sec);
    socket = await new Promise<us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen')))));
    base = `http://127.0.0.1:${uws.us_socket_local_port(socket)}`;
  });
  afterAll(() => uws.us_listen_socket_close(socket));

  it('answers a malformed percent-escape with 400 malformed_path and keeps serving', async () => {
    for (const path of ['/things/%E0%A4%A', '/things/%', '/things/%zz', '/things/%C0%80']) {
      const r = await fetch(`${base}${path}`);
      expect(r.status, path).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('malformed_path');
    }
    expect(await (await fetch(`${base}/things/a%20b`)).json()).toEqual({ id: 'a b' });
  });

  it('answers 405 with Allow for a known path and 404 for an unknown one; a literal segment beats a parameter', async () => {
    const wrong = await fetch(`${base}/things/x`, { method: 'PUT' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, DELETE, HEAD'); // HEAD: GET without the body
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('method_not_allowed');
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
    expect((await fetch(`${base}/things/x/y`)).status).toBe(404);
    expect(await (await fetch(`${base}/things/special`)).json()).toEqual({ special: true });
  });

  it('turns a throwing handler into a 500 without internals, counted, before and after a body', async () => {
    const r = await fetch(`${base}/throws`);
    expect(r.status).toBe(500);
    const text = await r.text();
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('internals');
    const late = await fetch(`${base}/throws-after-body`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });
    expect(late.status).toBe(500);
    expect(await late.text()).not.toContain('internals');
    const scraped = await metrics.scrape();
    expect(scraped).toMatch(/vigil_internal_errors_total\{entry="http"\} 2/);
    expect((await fetch(`${base}/things/ok`)).status).toBe(200);
  });

  it('refuses foreign Host names (421), foreign Origins on writes (403) and non-JSON bodies (415)', async () => {
    const { request } = await import('node:http');
    const send = (path: string, method: string, headers: Record<string, string>, body?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${base}${path}`, { method, headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(body);
      });
    expect(await send('/things/x', 'GET', { host: 'rebind.attacker.example' })).toBe(421);
    expect(await send('/things/x', 'GET', { host: 'vigil.example:443' })).toBe(200);
    expect(await send('/things/x', 'GET', { host: '10.1.2.3:8080' })).toBe(200);
    expect(await send('/things/x', 'GET', { host: 'localhost:8080' })).toBe(200);
    expect(await send('/things/x', 'DELETE', { origin: 'http://evil.example' })).toBe(403);
    expect(await send('/things/x', 'DELETE', { origin: 'null' })).toBe(403);
    expect(await send('/things/x', 'DELETE', { origin: 'http://allowed.example' })).toBe(200);
    const port = base.split(':').at(-1)!;
    expect(await send('/things/x', 'DELETE', { origin: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}` })).toBe(200);
    // A GET from another page reads nothing (CORS): only writes are refused.
    expect(await send('/things/x', 'GET', { origin: 'http://evil.example' })).toBe(200);
    expect(await send('/throws-after-body', 'POST', { 'content-type': 'text/plain' }, '{"n":1}')).toBe(415);
    expect(await send('/throws-after-body', 'POST', {}, '{"n":1}')).toBe(415);
    expect(await send('/throws-after-body', 'POST', { 'content-type': 'application/x-www-form-urlencoded' }, 'n=1')).toBe(415);
    expect(await send('/throws-after-body', 'POST', { 'content-type': 'application/json' }, '{"n":"x"}')).toBe(422);
  });

  it('answers any path, escape or method with a documented status, never a 500 or a dropped connection', async () => {
    const segment = fc.stringMatching(/^([A-Za-z0-9._~-]|%[0-9A-Fa-f]{0,2}|%[EeCcFf][0-9A-Fa-f]%[0-9A-Fa-f]{0,2}|\u00e9|\ud83d\ude00){0,6}$/);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('things', 'throws', 'nowhere'), fc.array(segment, { maxLength: 3 }), fc.constantFrom('GET', 'PUT', 'PATCH', 'DELETE', 'HEAD'), async (first, rest, method) => {
        const path = `/${[first, ...rest.map((p) => encodeURI(p).replace(/%25/g, '%'))].join('/')}`;
        const r = await fetch(`${base}${path}`, { method });
        expect([200, 400, 404, 405, ...(first === 'throws' && rest.length === 0 && (method === 'GET' || method === 'HEAD') ? [500] : [])], `${method} ${path}`).toContain(r.status);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a table with a duplicate route', () => {
    expect(() => mountRoutes(uws.App(), [routes[0]!, routes[0]!], {} as HttpSecurity)).toThrow(/declared twice/);
  });
});
