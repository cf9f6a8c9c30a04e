import { afterAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RunningHub } from '../../src/app.js';
import { httpUrl, startTestHub, wsUrl } from '../helpers/hub.js';
import { recordFault } from './fault-report.js';

let hub: RunningHub | undefined;
afterAll(async () => {
  await hub?.stop();
});

it('5,000 WebSocket clients connecting at once are all served, and the hub keeps answering', async () => {
  // Every client comes from 127.0.0.1: exempt it from the per-address limit (WS_MAX_CONNECTIONS_PER_IP).
  hub = await startTestHub('embedded', { WS_MAX_CONNECTIONS: '19000', WS_CONNECTION_LIMIT_EXEMPT: '127.0.0.1' });
  const count = 5000;
  const started = Date.now();
  const sockets: WebSocket[] = [];
  const snapshots = await Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        new Promise<boolean>((resolve) => {
          const ws = new WebSocket(wsUrl(hub!), { perMessageDeflate: false });
          sockets.push(ws);
          const timer = setTimeout(() => resolve(false), 30_000);
          ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe_device', device_id: `storm-${i % 100}` })));
          ws.on('message', (data) => {
            if (data.toString().startsWith('{"type":"snapshot"')) {
              clearTimeout(timer);
              resolve(true);
            }
          });
          ws.on('error', () => resolve(false));
        }),
    ),
  );
  const seconds = (Date.now() - started) / 1000;
  const served = snapshots.filter(Boolean).length;
  const metrics = await (await fetch(httpUrl(hub, '/metrics'))).text();
  recordFault({
    fault: `${count.toLocaleString('en-US')} WebSocket clients connecting at once`,
    pushed: served,
    recoveryMs: Math.round(seconds * 1000),
    note: `${served}/${count} got a snapshot; ${/vigil_ws_connections (\d+)/.exec(metrics)?.[1]} open; recovery = all served`,
  });
  expect(served).toBe(count);
  expect((await fetch(httpUrl(hub, '/healthz'))).status).toBe(200);
  await Promise.all(sockets.map((ws) => new Promise<void>((resolve) => (ws.readyState === WebSocket.CLOSED ? resolve() : (ws.once('close', () => resolve()), ws.close())))));
}, 90_000);
