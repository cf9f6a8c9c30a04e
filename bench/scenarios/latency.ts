import { runChild, waitForLine } from '../load/child.js';
import { readCounter, startBenchHub, type BenchServices } from '../bench-env.js';
import type { Figure } from '../report.js';
import { readEventLoopWindow, startEventLoopWindow } from '../load/event-loop-delay.js';
import { fleetEnv } from './restart.js';

/**
 * Of `messages` sent round-robin over `devices` devices, how many reach a followed one: clients follow
 * every `devices / clients`-th device (light-ws-clients.ts --stride), so one message in that many does.
 */
const followedOf = (messages: number, clients: number, devices: number): number => {
  const stride = devices / clients;
  return Math.floor(messages / devices) * clients + Math.min(clients, Math.ceil((messages % devices) / stride));
};

const ACCEPTED = /vigil_mqtt_messages_total\{kind="telemetry",outcome="accepted"\} (\d+)/;

/** Polls until the hub accepted `count` telemetry messages (the fleet is known) or 60 s passed. */
async function waitForAccepted(port: number, count: number): Promise<void> {
  for (const until = Date.now() + 60_000; Date.now() < until && (await readCounter(port, ACCEPTED)) < count; ) await new Promise((r) => setTimeout(r, 200));
}

export interface LatencyCase {
  readonly rate: number;
  readonly clients: number;
  /** Devices the messages are spread over (default: one per client); clients follow the first `clients`. */
  readonly devices?: number;
}

/** `rate:clients[:devices]`, comma-separated (bench/run.ts --latency-cases). */
export function parseLatencyCases(text: string): LatencyCase[] {
  return text.split(',').map((c) => {
    const [rate, clients, devices] = c.split(':').map(Number);
    return { rate: rate!, clients: clients!, devices };
  });
}

/**
 * MQTT publish → WebSocket receive latency at fixed rates: C clients each follow one of D devices
 * (D = C unless given; every D/C-th device), messages go round-robin over the D devices, so a message
 * reaches one client when its device is followed (every message when D = C); publisher, clients and hub are three
 * processes on 2 cores. Each case runs `seconds` measured seconds after 1 s of warm-up.
 */
export async function latencyScenario(s: BenchServices, cases: readonly LatencyCase[], seconds = 5): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const { rate, clients, devices = clients } of cases) {
    if (devices % clients !== 0) throw new Error(`latency case ${rate}:${clients}:${devices}: the devices must be a multiple of the clients`);
    // One second at the rate first, unmeasured: the publisher, broker, hub and clients are then all
    // running warm code (a fresh load-generator process's first half second is not the hub's latency).
    const warm = rate;
    const total = rate * seconds + warm;
    // The broker alone, same publisher and rate: the floor the hub's figures stand on.
    const barePrefix = `lat${Date.now().toString(36)}/devices`;
    const bare = runChild<{ received: number; p50: number; p99: number }>('bench/load/bare-subscriber.ts', {
      url: s.mqttUrl,
      prefix: barePrefix,
      expect: total,
      latency: 'true',
    });
    await waitForLine(bare.child, 'ready');
    const barePub = runChild<{ sent: number }>('bench/load/publisher.ts', { url: s.mqttUrl, prefix: barePrefix, count: total, warm, rate, devices, qos: 0 });
    const [baseline] = await Promise.all([bare.result, barePub.result]);
    const { hub, prefix, stop } = await startBenchHub(s, { MQTT_QOS: '0', ...(devices > 10_000 ? fleetEnv(devices) : {}) });
    try {
      // Steady state: every device is known before measuring (a device's first message also creates
      // its registry entry, presence, health state and an online transition; that burst is not the
      // latency of a running fleet).
      // A large fleet is made known once, at 10k/s (100,000 devices: 10 s), a small one twice.
      const large = devices > 10_000;
      const known = runChild<{ sent: number }>('bench/load/publisher.ts', { url: s.mqttUrl, prefix, count: devices * (large ? 1 : 2), rate: Math.min(rate, large ? 10_000 : 5000), devices, qos: 0 });
      await known.result;
      if (large) await waitForAccepted(hub.port, devices);
      await new Promise((r) => setTimeout(r, 2000));
      // Light clients (frame headers walked, "t" read from the bytes): the generator must not be what is slow.
      const ws = runChild<{ frames: number; updates: number; p50: number; p99: number; p999: number; samples: number }>('bench/load/light-ws-clients.ts', {
        url: `ws://127.0.0.1:${hub.port}/ws`,
        clients,
        devices,
        stride: devices / clients,
        mode: 'hub',
        latency: 'true',
        expect: followedOf(total, clients, devices),
        linger: 1000,
      });
      await waitForLine(ws.child, 'ready', 120_000);
      const pub = runChild<{ sent: number }>('bench/load/publisher.ts', { url: s.mqttUrl, prefix, count: total, warm, rate, devices, qos: 0 });
      // The event-loop delay histogram over the measured seconds, the window the latency samples come
      // from: opened as the first measured message goes out, read once the clients have them all
      // (before they disconnect: 10,000 sockets closing at once is a stall of its own, not this run's).
      await waitForLine(pub.child, 'warm', 30_000);
      await startEventLoopWindow(hub.port);
      await waitForLine(ws.child, 'measured', 120_000);
      const loop = await readEventLoopWindow(hub.port);
      const [r] = await Promise.all([ws.result, pub.result]);
      const label = `${rate / 1000}k msg/s, ${clients} clients${devices === clients ? '' : `, ${devices} devices`}`;
      const note = `${r.updates}/${followedOf(total, clients, devices)} updates delivered, the last ${followedOf(total, clients, devices) - followedOf(warm, clients, devices)} measured (${r.samples} samples) after 1 s of warm-up at the rate, ${seconds} s measured`;
      figures.push(
        { scenario: 'latency', metric: `publish→WS p50 (${label})`, value: r.p50, unit: 'ms', note },
        { scenario: 'latency', metric: `publish→WS p99 (${label})`, value: r.p99, unit: 'ms' },
        { scenario: 'latency', metric: `publish→WS p99.9 (${label})`, value: r.p999, unit: 'ms' },
        {
          scenario: 'latency',
          metric: `hub event-loop delay p99 (${label})`,
          value: loop.p99,
          unit: 'ms',
          note: `p50 ${loop.p50.toFixed(2)} ms, max ${loop.max.toFixed(1)} ms over the measured seconds (monitorEventLoopDelay, 10 ms timer subtracted); target p99 < 5 ms`,
        },
        { scenario: 'latency', metric: `hub event-loop delay max (${label})`, value: loop.max, unit: 'ms' },
        { scenario: 'latency', metric: `broker only p50 / p99 (${rate / 1000}k msg/s)`, value: baseline.p99, unit: 'ms p99', note: `p50 ${baseline.p50?.toFixed(2)} ms: publisher → Mosquitto → bare subscriber` },
      );
    } finally {
      await stop();
    }
  }
  return figures;
}
