import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { post } from '../../src/notify/sink.js';

/*
 * One delivery attempt against hostile receivers (real HTTP servers here): a redirect is not
 * followed (the signed body never goes where a 3xx points), a receiver that never answers or drips
 * its answer is given up at NOTIFY_TIMEOUT_MS, a huge answer is not read, an event over
 * NOTIFY_MAX_BODY_BYTES is not sent at all.
 */
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<number> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const limits = { timeoutMs: 400, maxBodyBytes: 4096 };
const body = JSON.stringify({ hello: 'world' });

it('does not follow a redirect: the 3xx is a retryable failure and its target gets nothing', async () => {
  let followed = 0;
  const target = await listen((_req, res) => {
    followed++;
    res.writeHead(200).end();
  });
  for (const status of [301, 302, 303, 307, 308]) {
    const port = await listen((_req, res) => res.writeHead(status, { location: `http://127.0.0.1:${target}/stolen` }).end());
    expect(await post(`http://127.0.0.1:${port}/hook`, {}, body, limits)).toEqual({ ok: false, error: `HTTP ${status}`, retry: true });
  }
  expect(followed).toBe(0);
});

it('gives up at the timeout on a receiver that never answers, or answers headers and then drips', async () => {
  const silent = await listen(() => undefined);
  const dripping = await listen((_req, res) => {
    res.writeHead(500);
    const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write('.')), 50);
    res.on('close', () => clearInterval(drip));
  });
  for (const port of [silent, dripping]) {
    const started = Date.now();
    const outcome = await post(`http://127.0.0.1:${port}/hook`, {}, body, limits);
    expect(outcome).toMatchObject({ ok: false, retry: true });
    expect(Date.now() - started).toBeLessThan(3000);
  }
});

it('does not read a huge answer: a 2xx with 256 MiB behind it is a delivery, taken at once', async () => {
  let written = 0;
  const port = await listen((_req, res) => {
    res.writeHead(200, { 'content-length': String(256 * 1024 * 1024) });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const more = () => {
      while (written < 4096 && !res.destroyed) {
        written++;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
    };
    more();
  });
  const started = Date.now();
  expect(await post(`http://127.0.0.1:${port}/hook`, {}, body, limits)).toEqual({ ok: true });
  expect(Date.now() - started).toBeLessThan(3000);
  expect(written).toBeLessThan(4096); // the hub stopped reading long before the end
});

it('sends nothing over NOTIFY_MAX_BODY_BYTES (dead at once, not retried)', async () => {
  let requests = 0;
  const port = await listen((_req, res) => {
    requests++;
    res.writeHead(200).end();
  });
  expect(await post(`http://127.0.0.1:${port}/hook`, {}, 'x'.repeat(5000), limits)).toMatchObject({ ok: false, retry: false });
  expect(requests).toBe(0);
});
