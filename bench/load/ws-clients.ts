import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { latencySummary, nowUs } from './latency-summary.js';

/**
 * C WebSocket clients in one process (a load generator): client i follows device `bench-{i % devices}`
 * (mode hub) or just listens (mode raw). Counts frames and, for device_update frames, the latency from
 * the publisher's send time (metrics.t, µs). Prints {"frames","seconds","p50","p99","p999"} once
 * `expect` frames arrived or it went idle.
 */
const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    clients: { type: 'string', default: '1000' },
    devices: { type: 'string', default: '1000' },
    mode: { type: 'string', default: 'hub' },
    expect: { type: 'string', default: '0' },
    'idle-ms': { type: 'string', default: '3000' },
    latency: { type: 'string', default: 'true' },
  },
});
const clients = Number(values.clients);
const devices = Number(values.devices);
const expected = Number(values.expect);
const measureLatency = values.latency === 'true';
const latencies: number[] = [];
let frames = 0;
let first = 0;
let last = 0;
let idle: NodeJS.Timeout | undefined;

const finish = () => {
  process.stdout.write(`${JSON.stringify({ frames, seconds: (last - first) / 1000, ...latencySummary(latencies), samples: latencies.length })}\n`);
  process.exit(0);
};

const onFrame = (data: WebSocket.RawData) => {
  const now = performance.now();
  if (frames++ === 0) first = now;
  last = now;
  if (measureLatency && latencies.length < 2_000_000) {
    const text = data.toString();
    const at = text.indexOf('"t":');
    if (text.startsWith('{"type":"device_update"') && at !== -1) latencies.push(nowUs() - Number.parseFloat(text.slice(at + 4)));
  }
  if (expected > 0 && frames >= expected) finish();
  clearTimeout(idle);
  idle = setTimeout(finish, Number(values['idle-ms']));
};

let open = 0;
for (let i = 0; i < clients; i++) {
  const ws = new WebSocket(values.url!, { perMessageDeflate: false });
  ws.on('open', () => {
    if (values.mode === 'hub') ws.send(JSON.stringify({ type: 'subscribe_device', device_id: `bench-${i % devices}` }));
    if (++open === clients) setTimeout(() => process.stdout.write('ready\n'), 300);
  });
  ws.on('message', (data) => {
    const text = data.toString();
    if (text.startsWith('{"type":"ack"') || text.startsWith('{"type":"snapshot"')) return;
    onFrame(data);
  });
  ws.on('error', (e) => process.stderr.write(`client ${i}: ${e.message}\n`));
  // Connect in small waves: a listen backlog overflow would drop connections silently.
  if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20));
}
