import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { loadUws } from '../../src/transport/uws.js';
import { nowUs } from './latency-summary.js';

/**
 * The fan-out path alone, for comparison with the hub's: a WebSocket server whose clients all
 * follow topic `bench-0`, publishing `--frames` frames the size of a hub device_update to them.
 * `--kind uws`: uWebSockets.js topic publish (the hub's own mechanism, without the hub);
 * `--kind ws`: the `ws` package, looping over the followers (a frame encoded once, sent to each).
 * GET /go starts publishing; the result line reports RSS before and after the connections.
 */
const { values } = parseArgs({
  options: {
    kind: { type: 'string', default: 'uws' },
    port: { type: 'string', default: '0' },
    frames: { type: 'string', default: '100' },
    'per-tick': { type: 'string', default: '10' },
  },
});
const frames = Number(values.frames);
const perTick = Number(values['per-tick']);
const rssIdle = process.memoryUsage().rss;
const frame = (seq: number) =>
  `{"type":"device_update","device_id":"bench-0","seq":${seq},"data":{"battery_level":80,"rssi":-61,"response_time_ms":120,"error_rate":0.01,"metrics":{"t":${Math.round(nowUs())},"temperature":21.5},"received_at":"2026-11-25T12:00:00.000Z"},"timestamp":"2026-11-25T12:00:00.000Z"}`;

function report(connections: number, rssConnected: number, started: number): void {
  process.stdout.write(`${JSON.stringify({ kind: values.kind, connections, published: frames, seconds: (performance.now() - started) / 1000, rssIdle, rssConnected })}\n`);
  setTimeout(() => process.exit(0), 500);
}

if (values.kind === 'uws') {
  const uws = loadUws();
  const app = uws.App();
  const sockets = new Set<import('uWebSockets.js').WebSocket<unknown>>();
  app.ws('/ws', {
    compression: uws.DISABLED,
    maxBackpressure: 1024 * 1024 * 1024,
    open: (ws) => {
      sockets.add(ws);
      ws.subscribe('bench-0');
    },
    close: (ws) => void sockets.delete(ws),
  });
  app.get('/go', (res) => {
    res.end('ok');
    const rssConnected = process.memoryUsage().rss;
    const started = performance.now();
    let seq = 0;
    const tick = () => {
      for (let i = 0; i < perTick && seq < frames; i++) app.publish('bench-0', frame(++seq), false);
      if (seq < frames) return setImmediate(tick);
      // Done once everything left userland buffers.
      const drained = () => {
        for (const ws of sockets) if (ws.getBufferedAmount() > 0) return setTimeout(drained, 5);
        report(sockets.size, rssConnected, started);
      };
      drained();
    };
    tick();
  });
  app.listen('127.0.0.1', Number(values.port), (socket) => {
    process.stdout.write(`ready ${uws.us_socket_local_port(socket)}\n`);
  });
} else {
  const server = createServer();
  const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
  const followers = new Set<WsSocket>();
  wss.on('connection', (ws) => {
    followers.add(ws);
    ws.on('close', () => followers.delete(ws));
  });
  server.on('request', (req, res) => {
    if (req.url !== '/go') return void res.end();
    res.end('ok');
    const rssConnected = process.memoryUsage().rss;
    const started = performance.now();
    let seq = 0;
    const tick = () => {
      for (let i = 0; i < perTick && seq < frames; i++) {
        const data = Buffer.from(frame(++seq));
        for (const ws of followers) ws.send(data, { binary: false });
      }
      if (seq < frames) return setImmediate(tick);
      const drained = () => {
        for (const ws of followers) if (ws.bufferedAmount > 0) return setTimeout(drained, 5);
        report(followers.size, rssConnected, started);
      };
      drained();
    };
    tick();
  });
  server.listen(Number(values.port), '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`ready ${typeof address === 'object' && address ? address.port : 0}\n`);
  });
}
