import { runChild, waitForLine } from '../load/child.js';
import { acceptedRate, cpuMsOf, readCounter, startBenchCluster, startBenchHub, type BenchServices } from '../bench-env.js';
import type { HubProcess } from '../../tests/helpers/hub-process.js';
import type { Figure } from '../report.js';

const CORES = '2 cores shared by every instance, Mosquitto, Redis, PostgreSQL and the publisher';

/**
 * Messages/s processed across `hubs` (each counted once, by its device's owner) while `count` are
 * published, and the CPU time the hub processes spent on them: summed over every instance (what the
 * cluster costs per message) and the busiest one's (what limits one instance).
 */
async function processedRate(s: BenchServices, hubs: HubProcess[], prefix: string, count: number) {
  const pids = hubs.map((h) => h.child.pid!);
  const cpuBefore = pids.map(cpuMsOf);
  // QoS 1 end to end (acknowledged after storage): the broker paces the publisher, nothing is dropped.
  const pub = runChild<{ sent: number }>('bench/load/publisher.ts', { url: s.mqttUrl, prefix, count, qos: 1, devices: 1000 });
  const measured = await acceptedRate(hubs, count);
  await pub.result;
  const spent = pids.map((pid, i) => cpuMsOf(pid) - cpuBefore[i]!);
  const perMessageUs = (ms: number) => (ms * 1000) / Math.max(1, measured.accepted);
  return {
    ...measured,
    cpuUsSum: perMessageUs(spent.reduce((a, b) => a + b, 0)),
    cpuUsMax: perMessageUs(Math.max(...spent)),
  };
}

const cpuNote = (r: { cpuUsSum: number; cpuUsMax: number }, instances: number) =>
  `CPU ${r.cpuUsSum.toFixed(1)} µs/msg summed over ${instances === 1 ? 'the instance' : `${instances} instances`}${instances > 1 ? `, busiest ${r.cpuUsMax.toFixed(1)}` : ''}`;

/** publish → WS latency with every client on `clientHub`, at a fixed rate over `clients` devices. */
async function pushLatency(s: BenchServices, clientHub: HubProcess, prefix: string, rate: number, clients: number, seconds: number) {
  const count = rate * seconds;
  const ws = runChild<{ frames: number; updates: number; p50: number; p99: number; p999: number }>('bench/load/light-ws-clients.ts', {
    url: `ws://127.0.0.1:${clientHub.port}/ws`,
    clients,
    devices: clients,
    mode: 'hub',
    latency: 'true',
    expect: count,
  });
  await waitForLine(ws.child, 'ready', 120_000);
  const pub = runChild<{ sent: number }>('bench/load/publisher.ts', { url: s.mqttUrl, prefix, count, rate, devices: clients, qos: 0 });
  const [r] = await Promise.all([ws.result, pub.result]);
  return { ...r, count };
}

/**
 * Scale-out: ingest with one, two and three instances (QoS 0, end to end), and the cost of the
 * Redis fan-out path against the single-instance one at the same rate.
 */
export async function clusterScenario(s: BenchServices, count = 60_000): Promise<Figure[]> {
  const figures: Figure[] = [];
  const single = await startBenchHub(s, { MQTT_QOS: '1' });
  try {
    const r = await processedRate(s, [single.hub], single.prefix, count);
    figures.push({ scenario: 'cluster', metric: 'ingest QoS 1, 1 hub (single-instance mode)', value: r.rate, unit: 'msg/s', note: `${r.accepted}/${count}; ${cpuNote(r, 1)}; ${CORES}` });
    figures.push({ scenario: 'cluster', metric: 'ingest QoS 1, 1 hub (single-instance mode): CPU per message', value: r.cpuUsSum, unit: 'µs/msg', note: 'hub process user+system time / messages processed' });
  } finally {
    await single.stop();
  }
  for (const instances of [1, 2, 3]) {
    const cluster = await startBenchCluster(s, instances, { MQTT_QOS: '1' });
    try {
      const r = await processedRate(s, cluster.hubs, cluster.prefix, count);
      const ignored = (await Promise.all(cluster.hubs.map((h) => readCounter(h.port, /^vigil_cluster_not_owned_total (\d+)/m)))).reduce((a, b) => a + b, 0);
      const label = `ingest QoS 1, ${instances} instance${instances > 1 ? 's' : ''} (cluster mode)`;
      figures.push({
        scenario: 'cluster',
        metric: label,
        value: r.rate,
        unit: 'msg/s',
        note: `${r.accepted}/${count}; every instance reads every message, ${ignored} skipped as another's; ${cpuNote(r, instances)}`,
      });
      figures.push({ scenario: 'cluster', metric: `${label}: CPU per message, summed over instances`, value: r.cpuUsSum, unit: 'µs/msg', note: `busiest instance ${r.cpuUsMax.toFixed(1)} µs/msg` });
    } finally {
      await cluster.stop();
    }
  }

  // Fan-out: the same 2k msg/s to 1,000 clients, through the in-process path and through Redis.
  const rate = 2000;
  const clients = 1000;
  const local = await startBenchHub(s, { MQTT_QOS: '0' });
  try {
    const r = await pushLatency(s, local.hub, local.prefix, rate, clients, 5);
    figures.push({ scenario: 'cluster', metric: 'push p50 / p99, single instance (local fan-out)', value: r.p99, unit: 'ms p99', note: `p50 ${r.p50.toFixed(2)} ms; ${r.updates}/${r.count} delivered` });
  } finally {
    await local.stop();
  }
  const pair = await startBenchCluster(s, 2, { MQTT_QOS: '0' });
  try {
    // Clients on one instance; half the devices are owned by the other, so half the frames cross Redis.
    const r = await pushLatency(s, pair.hubs[0]!, pair.prefix, rate, clients, 5);
    const remote = await readCounter(pair.hubs[0]!.port, /vigil_fanout_remote_frames_total (\d+)/);
    figures.push({
      scenario: 'cluster',
      metric: 'push p50 / p99, 2 instances (Redis fan-out)',
      value: r.p99,
      unit: 'ms p99',
      note: `p50 ${r.p50.toFixed(2)} ms; ${r.updates}/${r.count} delivered, ${remote} of them via Redis from the other instance`,
    });
  } finally {
    await pair.stop();
  }
  return figures;
}
