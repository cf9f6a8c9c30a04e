import { parseArgs } from 'node:util';
import { connectAsync } from 'mqtt';
import { latencySummary, nowUs } from './latency-summary.js';

/**
 * The broker's ceiling: an MQTT.js subscriber that only counts (and, with --latency true, reads the
 * publisher's send time to give the broker-only latency baseline). Prints {"received","seconds",
 * "cpuUsPerMsg","p50","p99","p999"} once `expect` arrived or it went idle.
 */
const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    prefix: { type: 'string', default: 'devices' },
    qos: { type: 'string', default: '0' },
    expect: { type: 'string', default: '100000' },
    'idle-ms': { type: 'string', default: '3000' },
    latency: { type: 'string', default: 'false' },
  },
});
const measureLatency = values.latency === 'true';
const latencies: number[] = [];
const expected = Number(values.expect);
// Exactly the hub's client options (src/transport/mqtt-connection.ts, with the bench hub's settings:
// MQTT_CLEAN_SESSION=true, MQTT_PROTOCOL 5 for an external broker, MQTT_RECEIVE_MAXIMUM 1000),
// so the two differ only in what they do with a message: tracing off, MQTT 5, the same receive
// window and session expiry, keepalive, no resubscribe, and Nagle off on every connect.
const client = await connectAsync(values.url!, {
  clientId: `vigil-bench-bare-${process.pid}`,
  clean: true,
  protocolVersion: 5,
  properties: { receiveMaximum: 1000, sessionExpiryInterval: 0 },
  reconnectPeriod: 500,
  log: () => undefined,
  connectTimeout: 10_000,
  keepalive: 30,
  resubscribe: false,
});
(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
client.on('connect', () => (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true));
await client.subscribeAsync(`${values.prefix}/+/telemetry`, { qos: values.qos === '1' ? 1 : 0 });
let received = 0;
let first = 0;
let last = 0;
let cpuAtFirst = 0;
// Idleness is checked by one interval, not a timer re-armed per message: the ceiling does nothing per message.
const idleMs = Number(values['idle-ms']);
const finish = () => {
  const cpuUs = cpuNowUs() - cpuAtFirst;
  process.stdout.write(`${JSON.stringify({ received, seconds: (last - first) / 1000, cpuUsPerMsg: received > 1 ? cpuUs / (received - 1) : null, ...latencySummary(latencies) })}\n`);
  process.exit(0);
};
setInterval(() => {
  if (received > 0 && performance.now() - last > idleMs) finish();
}, 100);
client.on('message', (_topic, payload) => {
  const now = performance.now();
  if (measureLatency) {
    const text = payload.toString();
    const at = text.indexOf('"t":');
    if (at !== -1) latencies.push(nowUs() - Number.parseFloat(text.slice(at + 4)));
  }
  if (received++ === 0) {
    first = now;
    cpuAtFirst = cpuNowUs();
  }
  last = now;
  if (received >= expected) finish();
});
process.stdout.write('ready\n');

/** CPU time this process has used (user + system), µs. */
function cpuNowUs(): number {
  const used = process.cpuUsage();
  return used.user + used.system;
}
