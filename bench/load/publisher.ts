import { parseArgs } from 'node:util';
import { connectAsync } from 'mqtt';
import { nowUs } from './latency-summary.js';

/**
 * Publishes `count` telemetry messages over `devices` devices, as fast as the socket takes them
 * (`rate` 0) or at a fixed rate, each carrying its send time (µs, metrics.t) for latency. Bounded in
 * count and time; prints {"sent","seconds"}. `--warm N`: the first N carry no send time (warm-up),
 * and a line `warm` is printed as the first measured message goes out.
 */
const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    prefix: { type: 'string', default: 'devices' },
    devices: { type: 'string', default: '1000' },
    count: { type: 'string', default: '100000' },
    rate: { type: 'string', default: '0' },
    qos: { type: 'string', default: '0' },
    'max-seconds': { type: 'string', default: '60' },
    // Sent first, at the same rate, without a send time: every process on the path (this one too)
    // runs warm code by the time measured messages flow. Included in `count`.
    warm: { type: 'string', default: '0' },
  },
});
const devices = Number(values.devices);
const count = Number(values.count);
const rate = Number(values.rate);
const qos = values.qos === '1' ? 1 : 0;
const warm = Number(values.warm);
const deadline = Date.now() + Number(values['max-seconds']) * 1000;
const client = await connectAsync(values.url!, { clientId: `vigil-bench-pub-${process.pid}`, clean: true, log: () => undefined });
// Each publish leaves at once: with Nagle's algorithm a burst of small writes waits for the
// broker's (delayed) ACK, adding up to ~40 ms to what the latency scenarios measure.
(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
const topics = Array.from({ length: devices }, (_, i) => `${values.prefix}/bench-${i}/telemetry`);
const payload = (i: number) =>
  `{"battery_level":${50 + (i % 50)},"rssi":${-60 - (i % 30)},"response_time_ms":${100 + (i % 100)},"error_rate":0.01,"metrics":{${i < warm ? '' : `"t":${Math.round(nowUs())},`}"temperature":21.5}}`;

const started = performance.now();
let sent = 0;
let inflight = 0;
await new Promise<void>((resolve) => {
  const step = () => {
    if (sent >= count || Date.now() > deadline) {
      if (inflight === 0) resolve();
      return;
    }
    const due = rate > 0 ? Math.min(count, Math.floor(((performance.now() - started) / 1000) * rate)) : count;
    let budget = rate > 0 ? due - sent : 2000;
    while (budget-- > 0 && sent < count) {
      const i = sent++;
      // The warm-up is over: a caller measuring over the measured messages only starts now.
      if (warm > 0 && i === warm) process.stdout.write('warm\n');
      if (qos === 1) {
        inflight++;
        client.publish(topics[i % devices]!, payload(i), { qos }, () => {
          inflight--;
          if (sent >= count && inflight === 0) resolve();
        });
        if (inflight > 1000) break;
      } else client.publish(topics[i % devices]!, payload(i), { qos });
    }
    const stream = client.stream as { writableNeedDrain?: boolean; once(e: string, f: () => void): void };
    if (stream.writableNeedDrain) stream.once('drain', step);
    else setTimeout(step, rate > 0 ? 1 : 0);
  };
  step();
});
const seconds = (performance.now() - started) / 1000;
await client.endAsync();
process.stdout.write(`${JSON.stringify({ sent, seconds })}\n`);
