import { runChild, waitForLine } from '../load/child.js';
import { acceptedRate, cpuMsOf, startBenchHub, type BenchServices } from '../bench-env.js';
import type { Figure } from '../report.js';

/** Messages per second the broker can hand to a subscriber that does nothing. */
async function bareCeiling(s: BenchServices, qos: 0 | 1, count: number): Promise<{ rate: number; received: number; cpuUsPerMsg: number }> {
  const prefix = `bare${Date.now().toString(36)}/devices`;
  const sub = runChild<{ received: number; seconds: number; cpuUsPerMsg: number }>('bench/load/bare-subscriber.ts', { url: s.mqttUrl, prefix, qos, expect: count });
  await waitForLine(sub.child, 'ready');
  const pub = runChild<{ sent: number }>('bench/load/publisher.ts', { url: s.mqttUrl, prefix, count, qos, devices: 1000 });
  const [r] = await Promise.all([sub.result, pub.result]);
  return { rate: r.received / r.seconds, received: r.received, cpuUsPerMsg: r.cpuUsPerMsg };
}

/** Messages per second the hub takes end to end: validate, presence, score and rules, fan-out, batched write. */
async function hubRate(s: BenchServices, qos: 0 | 1, count: number): Promise<{ rate: number; accepted: number; cpuUsPerMsg: number }> {
  const { hub, prefix, stop } = await startBenchHub(s, { MQTT_QOS: String(qos) });
  try {
    const cpuBefore = cpuMsOf(hub.child.pid!);
    const pub = runChild<{ sent: number }>('bench/load/publisher.ts', { url: s.mqttUrl, prefix, count, qos, devices: 1000 });
    const measured = await acceptedRate([hub], count);
    const cpuUsPerMsg = ((cpuMsOf(hub.child.pid!) - cpuBefore) * 1000) / Math.max(1, measured.accepted);
    await pub.result;
    return { ...measured, cpuUsPerMsg };
  } finally {
    await stop();
  }
}

export async function ingestScenario(s: BenchServices): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const [qos, count] of [
    [0, 200_000],
    [1, 100_000],
  ] as const) {
    const bare = await bareCeiling(s, qos, count);
    const hub = await hubRate(s, qos, count);
    const note = '2 cores shared by publisher, Mosquitto and subscriber';
    figures.push(
      { scenario: 'ingest', metric: `bare MQTT.js subscriber, QoS ${qos}`, value: bare.rate, unit: 'msg/s', note: `${bare.received}/${count} received; ${note}` },
      { scenario: 'ingest', metric: `hub end to end, QoS ${qos}`, value: hub.rate, unit: 'msg/s', note: `${hub.accepted}/${count} accepted; Redis presence, PostgreSQL writes` },
      { scenario: 'ingest', metric: `hub / bare ratio, QoS ${qos}`, value: hub.rate / bare.rate, unit: 'x', note: 'target >= 0.6' },
      // Rates depend on how busy the shared cores are; CPU per message is what each process itself costs.
      { scenario: 'ingest', metric: `bare subscriber CPU per message, QoS ${qos}`, value: bare.cpuUsPerMsg, unit: 'µs', note: 'user + system, from its first message to its last' },
      { scenario: 'ingest', metric: `hub CPU per message, QoS ${qos}`, value: hub.cpuUsPerMsg, unit: 'µs', note: 'user + system while the run lasted (incl. writer, presence, timers)' },
    );
  }
  return figures;
}
