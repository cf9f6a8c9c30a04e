import { request } from 'node:http';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';

/** A raw request (fetch may not set Host or Origin), answered with its status and body. */
function send(hub: RunningHub, path: string, method: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(httpUrl(hub, path), { method, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function upgrade(hub: RunningHub, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl(hub), { headers });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('error', () => resolve(0));
  });
}

/** A hub without keys on loopback: what any web page could reach before these checks. */
describe('browser-borne requests to a hub without keys', () => {
  let hub: RunningHub;
  const evil = { origin: 'http://evil.example' };

  beforeAll(async () => {
    hub = await startTestHub('embedded', { HTTP_RATE_PER_S: '100000', HTTP_RATE_BURST: '100000' });
  });
  afterAll(() => hub?.stop());

  it('survives a malformed percent-escape on every route with a path parameter (400 malformed_path)', async () => {
    const templated = hub.routes.filter((r) => r.path.includes('{'));
    expect(templated.length).toBeGreaterThan(5);
    for (const r of templated) {
      const path = r.path.replace(/\{\w+\}/, '%E0%A4%A');
      const answer = await send(hub, path, r.method, { 'content-type': 'application/json' }, r.body ? '{}' : undefined);
      expect(answer.status, `${r.method} ${path}`).toBe(400);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'malformed_path' } });
    }
    expect((await send(hub, '/healthz', 'GET')).status).toBe(200);
  });

  it('answers a wrong method on every known path with 405 and Allow', async () => {
    const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
    const byPath = new Map<string, Set<string>>();
    for (const r of hub.routes) (byPath.get(r.path) ?? byPath.set(r.path, new Set()).get(r.path)!).add(r.method);
    for (const [template, allowed] of byPath) {
      const path = template.replace(/\{\w+\}/g, 'x');
      for (const method of methods.filter((m) => !allowed.has(m))) {
        const answer = await send(hub, path, method);
        expect(answer.status, `${method} ${path}`).toBe(405);
        const allow = allowed.has('GET') ? [...allowed, 'HEAD'] : [...allowed];
        expect(String(answer.headers.allow).split(', ').sort(), `${method} ${path}`).toEqual(allow.sort());
      }
    }
    expect((await send(hub, '/no/such/path', 'GET')).status).toBe(404);
    // The WebSocket endpoint is a known path too: other methods 405, a GET without Upgrade 426.
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const answer = await send(hub, '/ws', method);
      expect(answer.status, `${method} /ws`).toBe(405);
      expect(answer.headers.allow).toBe('GET, HEAD');
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'method_not_allowed' } });
    }
    const plain = await send(hub, '/ws', 'GET');
    expect(plain.status).toBe(426);
    expect(plain.headers.upgrade).toBe('websocket');
    expect(JSON.parse(plain.body)).toMatchObject({ error: { code: 'upgrade_required' } });
    expect((await send(hub, '/ws', 'HEAD')).status).toBe(426);
    expect(await upgrade(hub, {})).toBe(101);
  });

  it('answers HEAD on every GET route as GET, without the body', async () => {
    const gets = hub.routes.filter((r) => r.method === 'GET');
    expect(gets.length).toBeGreaterThan(10);
    for (const r of gets) {
      const path = r.path.replace(/\{\w+\}/g, 'x');
      const get = await send(hub, path, 'GET').catch((e: Error) => { throw new Error(`GET ${path}: ${e.message}`); });
      const head = await send(hub, path, 'HEAD').catch((e: Error) => { throw new Error(`HEAD ${path}: ${e.message}`); });
      expect(head.status, `HEAD ${path}`).toBe(get.status);
      expect(head.body, `HEAD ${path}`).toBe('');
      expect(head.headers['content-type'], `HEAD ${path}`).toBe(get.headers['content-type']);
      expect(head.headers['x-request-id'], `HEAD ${path}`).toMatch(/./);
      if (get.status === 200 && !/metrics|healthz|readyz|health$/.test(path)) expect(Number(head.headers['content-length']), `HEAD ${path}`).toBe(Buffer.byteLength(get.body));
    }
  });

  it('refuses a foreign Host name (DNS rebinding) with 421 and serves its own names', async () => {
    const rebound = await send(hub, '/status/summary', 'GET', { host: `rebind.attacker.example:${hub.port}` });
    expect(rebound.status).toBe(421);
    expect(JSON.parse(rebound.body)).toMatchObject({ error: { code: 'misdirected_request' } });
    expect(rebound.body).not.toContain('devices');
    expect((await send(hub, '/status/summary', 'GET', { host: `localhost:${hub.port}` })).status).toBe(200);
    expect((await send(hub, '/status/summary', 'GET', { host: `127.0.0.1:${hub.port}` })).status).toBe(200);
    expect(await upgrade(hub, { host: `rebind.attacker.example:${hub.port}` })).toBe(421);
  });

  it('refuses writes and WebSockets from a foreign page, and text/plain or form bodies', async () => {
    const command = JSON.stringify({ command: 'reboot' });
    expect((await send(hub, '/devices/d1/commands', 'POST', { ...evil, 'content-type': 'application/json' }, command)).status).toBe(403);
    // What a page can send without a preflight: text/plain (or a form), with or without an Origin.
    expect((await send(hub, '/devices/d1/commands', 'POST', { 'content-type': 'text/plain;charset=UTF-8' }, command)).status).toBe(415);
    expect((await send(hub, '/status', 'POST', { 'content-type': 'text/plain' }, JSON.stringify({ device_id: 'injected', battery_level: 1 }))).status).toBe(415);
    expect((await send(hub, '/status/injected', 'GET')).status).toBe(404);
    expect(await upgrade(hub, evil)).toBe(403);
    expect(await upgrade(hub, { origin: `http://127.0.0.1:${hub.port}` })).toBe(101);
    expect(await upgrade(hub, {})).toBe(101);
    // The hub's own page and non-browser clients pass.
    expect((await send(hub, '/devices/d1/commands', 'POST', { origin: `http://localhost:${hub.port}`, host: `localhost:${hub.port}`, 'content-type': 'application/json' }, command)).status).toBe(202);
    expect((await send(hub, '/devices/d1/commands', 'POST', { 'content-type': 'application/json; charset=utf-8' }, command)).status).toBe(202);
  });

  it('does not let a foreign page create the first admin key', async () => {
    const body = JSON.stringify({ name: 'attacker', scopes: ['admin'] });
    expect((await send(hub, '/admin/keys', 'POST', { ...evil, 'content-type': 'application/json' }, body)).status).toBe(403);
    expect((await send(hub, '/admin/keys', 'POST', { 'content-type': 'text/plain' }, body)).status).toBe(415);
    expect((await send(hub, '/admin/keys', 'POST', { host: `rebind.attacker.example:${hub.port}`, 'content-type': 'application/json' }, body)).status).toBe(421);
    // Still no key: the hub still serves without one (and the list is empty).
    expect(JSON.parse((await send(hub, '/admin/keys', 'GET')).body)).toEqual({ keys: [] });
  });
});
