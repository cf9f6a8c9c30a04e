import { parseArgs } from 'node:util';
import { connectAsync } from 'mqtt';
import WebSocket from 'ws';
import { startBenchHub } from './bench-env.js';
import { saveNamedResult } from './report.js';

/**
 * Soak: a hub process under steady load with churn for --minutes, sampling its heap, RSS and
 * event-loop delay from /metrics. Devices go silent and come back (presence transitions), and
 * WebSocket clients disconnect and resubscribe, the whole time. Fails (exit 1) when the heap floor
 * of the last third of the run is above the middle third's by more than --max-growth-mb, which is
 * what unbounded growth looks like once warm-up is over.
 *   npm run soak -- --minutes 30 [--rate 500 --devices 2000 --clients 200]
 */
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '500' },
    devices: { type: 'string', default: '2000' },
    clients: { type: 'string', default: '200' },
    'sample-s': { type: 'string', default: '10' },
    'max-growth-mb': { type: 'string', default: '16' },
    'mqtt-url': { type: 'string', default: process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883' },
    'redis-url': { type: 'string', default: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    'postgres-url': { type: 'string', default: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const deviceCount = Number(values.devices);
const clientCount = Number(values.clients);
const sampleMs = Number(values['sample-s']) * 1000;
const maxGrowthBytes = Number(values['max-growth-mb']) * 2 ** 20;
for (const [name, value] of Object.entries({ minutes, rate, devices: deviceCount, clients: clientCount, sampleMs, maxGrowthBytes })) {
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`soak: --${name} must be a positive number\n`);
    process.exit(2);
  }
}

interface Sample {
  readonly minute: number;
  readonly heapUsedMb: number;
  readonly rssMb: number;
  readonly eventLoopP99Ms: number;
  readonly wsConnections: number;
  readonly published: number;
}

const env = await startBenchHub(
  { mqttUrl: values['mqtt-url']!, redisUrl: values['redis-url']!, postgresAdminUrl: values['postgres-url']! },
  { OFFLINE_TIMEOUT_S: '5' },
);
const base = `http://127.0.0.1:${env.hub.port}`;
const deadline = Date.now() + minutes * 60_000;
const ids = Array.from({ length: deviceCount }, (_, i) => `soak-${i}`);
// A tenth of the fleet is resting at any time; the resting tenth moves every 20 s, so devices keep
// going offline and coming back (presence transitions, offline alerts, history rows).
let restingFrom = 0;
const isResting = (i: number) => (i - restingFrom + deviceCount) % deviceCount < deviceCount / 10;

const publisher = await connectAsync(values['mqtt-url']!, { clientId: `soak-pub-${Date.now()}`, clean: true });
let published = 0;
const publishing = (async () => {
  const started = Date.now();
  let i = 0;
  while (Date.now() < deadline) {
    const due = started + (published * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    i = (i + 1) % deviceCount;
    if (isResting(i)) continue;
    const reading = { battery_level: 20 + (i % 80), rssi: -40 - (i % 50), response_time_ms: 50 + (published % 300), error_count: published % 97 === 0 ? 1 : 0 };
    publisher.publish(`${env.prefix}/${ids[i]}/telemetry`, JSON.stringify(reading), { qos: 0 });
    published++;
  }
})();
const rotation = setInterval(() => (restingFrom = (restingFrom + deviceCount / 10) % deviceCount), 20_000);

// Clients follow 5 devices each; every 5 s a tenth of them drop and come back.
const sockets = new Set<WebSocket>();
let framesReceived = 0;
function connectClient(n: number): void {
  const ws = new WebSocket(`ws://127.0.0.1:${env.hub.port}/ws`, { perMessageDeflate: false });
  sockets.add(ws);
  ws.on('open', () => {
    for (let k = 0; k < 5; k++) ws.send(JSON.stringify({ type: 'subscribe_device', device_id: ids[(n * 5 + k) % deviceCount] }));
  });
  ws.on('message', () => framesReceived++);
  ws.on('close', () => sockets.delete(ws));
  ws.on('error', () => undefined);
}
for (let n = 0; n < clientCount; n++) connectClient(n);
let reconnects = 0;
const churn = setInterval(() => {
  let n = 0;
  for (const ws of sockets) {
    if (n++ % 10 !== 0) continue;
    ws.close();
    connectClient(reconnects++);
  }
}, 5_000);

async function sample(): Promise<Sample> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const read = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
  return {
    minute: Math.round((minutes * 60_000 - (deadline - Date.now())) / 600) / 100,
    heapUsedMb: read(/^nodejs_heap_size_used_bytes (\S+)/m) / 2 ** 20,
    rssMb: read(/^process_resident_memory_bytes (\S+)/m) / 2 ** 20,
    eventLoopP99Ms: read(/^nodejs_eventloop_lag_p99_seconds (\S+)/m) * 1000,
    wsConnections: read(/^vigil_ws_connections (\S+)/m),
    published,
  };
}

const samples: Sample[] = [];
process.stdout.write(`soak: ${minutes} min, ${rate} msg/s over ${deviceCount} devices (a tenth resting, rotating every 20 s), ${clientCount} WS clients (a tenth reconnecting every 5 s)\n`);
process.stdout.write('minute  heap MB  rss MB  loop p99 ms  ws  published\n');
while (Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, Math.min(sampleMs, Math.max(0, deadline - Date.now()))));
  const s = await sample();
  samples.push(s);
  process.stdout.write(`${s.minute.toFixed(1).padStart(6)}  ${s.heapUsedMb.toFixed(1).padStart(7)}  ${s.rssMb.toFixed(1).padStart(6)}  ${s.eventLoopP99Ms.toFixed(1).padStart(11)}  ${String(s.wsConnections).padStart(3)}  ${s.published}\n`);
}
clearInterval(rotation);
clearInterval(churn);
await publishing;
await publisher.endAsync();
for (const ws of sockets) ws.close();
await env.stop();

// The heap floor (lowest sample) of a third is what survives GC; compare the last third with the middle.
const third = Math.floor(samples.length / 3);
const floor = (part: Sample[], key: 'heapUsedMb' | 'rssMb') => Math.min(...part.map((s) => s[key]));
const middle = samples.slice(third, 2 * third);
const last = samples.slice(2 * third);
const growthMb = floor(last, 'heapUsedMb') - floor(middle, 'heapUsedMb');
const rssGrowthMb = floor(last, 'rssMb') - floor(middle, 'rssMb');
const loopP99 = samples.map((s) => s.eventLoopP99Ms).sort((a, b) => a - b);
const verdict = samples.length >= 3 && growthMb * 2 ** 20 <= maxGrowthBytes ? 'flat' : 'growing';
const summary = {
  minutes,
  rate,
  devices: deviceCount,
  clients: clientCount,
  published,
  framesReceived,
  reconnects,
  heapFloorMiddleMb: floor(middle, 'heapUsedMb'),
  heapFloorLastMb: floor(last, 'heapUsedMb'),
  heapGrowthMb: growthMb,
  rssGrowthMb,
  eventLoopP99MedianMs: loopP99[Math.floor(loopP99.length / 2)],
  eventLoopP99MaxMs: loopP99.at(-1),
  verdict,
};
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.stdout.write(`soak results: ${saveNamedResult('soak', { summary, samples })}\n`);
process.exit(verdict === 'flat' ? 0 : 1);
