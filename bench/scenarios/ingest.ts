import { runChild, waitForLine } from '../load/child.js';
import { acceptedRate, cpuMsOf, startBenchHub, type BenchServices } from '../bench-env.js';
import type { Figure } from '../report.js';
import { startCSubscriber } from '../load/c-subscriber.js';

/** The broker's egress limit: the same publisher into Mosquitto's C subscriber. */
async function brokerEgress(s: BenchServices, qos: 0 | 1, count: number): Promise<{ rate: number; received: number; cpuUsPerMsg: number }> {
  const prefix = `csub${Date.now().toString(36)}/devices`;
  const sub = await startCSubscriber(s.mqttUrl, prefix, qos, count);
  const pub = runChild<{ sent: number }>('bench/load/publisher.ts', { url: s.mqttUrl, prefix, count, qos, devices: 1000 });
  const [r] = await Promise.all([sub.result, pub.result]);
  return { rate: r.received / r.seconds, received: r.received, cpuUsPerMsg: r.cpuUsPerMsg };
}

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
async function hubRate(s: BenchServices, qos: 0 | 1, count: number): Promise<{ rate: number; accepted: number; cpuUsPerMsg: number; wholeRunUsPerMsg: number }> {
  const { hub, prefix, stop } = await startBenchHub(s, { MQTT_QOS: String(qos) });
  try {
    const cpuBefore = cpuMsOf(hub.child.pid!);
    const pub = runChild<{ sent: number }>('bench/load/publisher.ts', { url: s.mqttUrl, prefix, count, qos, devices: 1000 });
    const measured = await acceptedRate([hub], count);
    const wholeRunUsPerMsg = ((cpuMsOf(hub.child.pid!) - cpuBefore) * 1000) / Math.max(1, measured.accepted);
    await pub.result;
    return { ...measured, wholeRunUsPerMsg };
  } finally {
    await stop();
  }
}

export async function ingestScenario(s: BenchServices, qos0Count = 200_000): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const [qos, count] of [
    [0, qos0Count],
    [1, Math.round(qos0Count / 2)],
  ] as const) {
    const egress = await brokerEgress(s, qos, count);
    const bare = await bareCeiling(s, qos, count);
    const hub = await hubRate(s, qos, count);
    const note = '2 cores shared by publisher, Mosquitto and subscriber';
    figures.push(
      // The headline (#21): what the hub spends on a message over what the bare MQTT.js client with
      // the hub's own options spends on it. Rates move with how busy the shared cores are; this does not.
      { scenario: 'ingest', metric: `hub CPU per message / bare CPU per message, QoS ${qos}`, value: hub.cpuUsPerMsg / bare.cpuUsPerMsg, unit: 'x', note: 'target <= 1.3; the bare subscriber uses the hub\'s client options' },
      { scenario: 'ingest', metric: `broker egress (mosquitto_sub), QoS ${qos}`, value: egress.rate, unit: 'msg/s', note: `${egress.received}/${count} received by the C client: the broker's own limit on this machine` },
      { scenario: 'ingest', metric: `mosquitto_sub CPU per message, QoS ${qos}`, value: egress.cpuUsPerMsg, unit: 'µs', note: 'user + system, from its first message to its last (/proc, 10 ms ticks)' },
      { scenario: 'ingest', metric: `bare MQTT.js subscriber, QoS ${qos}`, value: bare.rate, unit: 'msg/s', note: `${bare.received}/${count} received; ${note}` },
      { scenario: 'ingest', metric: `hub end to end, QoS ${qos}`, value: hub.rate, unit: 'msg/s', note: `${hub.accepted}/${count} accepted; Redis presence, PostgreSQL writes` },
      { scenario: 'ingest', metric: `hub / bare ratio, QoS ${qos}`, value: hub.rate / bare.rate, unit: 'x', note: 'target >= 0.6' },
      // Rates depend on how busy the shared cores are; CPU per message is what each process itself costs.
      { scenario: 'ingest', metric: `bare subscriber CPU per message, QoS ${qos}`, value: bare.cpuUsPerMsg, unit: 'µs', note: 'user + system, from its first message to its last' },
      { scenario: 'ingest', metric: `hub CPU per message, QoS ${qos}`, value: hub.cpuUsPerMsg, unit: 'µs', note: `user + system from its first accepted message to its last, as the bare one's (incl. writer, presence, timers); ${hub.wholeRunUsPerMsg.toFixed(2)} µs over the whole run` },
    );
  }
  return figures;
}
