import { parseArgs } from 'node:util';
import { clusterScenario } from './scenarios/cluster.js';
import { fanoutScenario } from './scenarios/fanout.js';
import { fleetScenario } from './scenarios/fleet.js';
import { footprintScenario } from './scenarios/footprint.js';
import { ingestScenario } from './scenarios/ingest.js';
import { latencyScenario, parseLatencyCases } from './scenarios/latency.js';
import { hotPathScenario } from './scenarios/hot-path.js';
import { presenceScenario } from './scenarios/presence.js';
import { restScenario } from './scenarios/rest.js';
import { restartScenario } from './scenarios/restart.js';
import { writerScenario } from './scenarios/writer.js';
import { printTable, saveResults, type Figure } from './report.js';
import { TestBroker } from '../tests/helpers/mosquitto-service.js';

/**
 * `npm run bench [-- --only presence]`: bounded scenarios against this machine's services. The MQTT
 * scenarios run on a Mosquitto the bench starts with the settings Vigil ships
 * (deploy/mosquitto/mosquitto.conf: deep session queues, 1,000 in flight), since stock defaults
 * drop QoS 1 messages past 1,000 queued; `--mqtt-url` uses a broker of yours instead.
 * Figures vary ±10–20 % between runs on a shared 2-core machine: compare ratios within one run.
 */
const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    'mqtt-url': { type: 'string' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    'postgres-url': { type: 'string', default: process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    // Messages per ingest run of the cluster scenario (a quick check with fewer; figures use the default).
    'cluster-count': { type: 'string', default: '60000' },
    // QoS 0 messages per ingest run (QoS 1 runs half as many); a quick check with fewer.
    'ingest-count': { type: 'string', default: '200000' },
    // Latency cases as rate:clients[:devices] (each client follows its own device; messages spread over
    // the devices, one per client unless given); a quick check with one small case.
    'latency-cases': { type: 'string', default: '1000:1000,10000:1000,30000:1000,10000:10000,10000:10000:100000' },
    // Measured seconds per latency case (after 1 s of warm-up); longer runs catch more periodic work.
    'latency-seconds': { type: 'string', default: '5' },
    // Followers of one device in the fan-out runs, and idle connections the hub is asked to hold.
    'fanout-clients': { type: 'string', default: '10000' },
    'fanout-held': { type: 'string', default: '19000' },
    // Frames published to the followers of one device in each fan-out run (raw and hub alike).
    'fanout-frames': { type: 'string', default: '1000' },
    // Fleet sizes of the heap-per-device and expiry runs (a quick check with e.g. 10000).
    'fleet-devices': { type: 'string', default: '100000,1000000' },
    // Fleet sizes of the restart scenario (a quick check with e.g. 10000; figures use the default).
    'restart-devices': { type: 'string', default: '100000,1000000' },
  },
});

const broker = values['mqtt-url'] ? null : new TestBroker(21_000 + Math.floor(Math.random() * 9000));
await broker?.start();
const services = {
  mqttUrl: values['mqtt-url'] ?? broker!.url,
  redisUrl: values['redis-url']!,
  postgresAdminUrl: values['postgres-url']!,
};

const scenarios: Record<string, () => Promise<Figure[]>> = {
  ingest: () => ingestScenario(services, Number(values['ingest-count'])),
  latency: () => latencyScenario(services, parseLatencyCases(values['latency-cases']!), Number(values['latency-seconds'])),
  presence: () => presenceScenario(values['redis-url']!),
  footprint: () => footprintScenario(),
  'hot-path': () => hotPathScenario(),
  rest: () => restScenario(),
  writer: () => writerScenario(values['postgres-url']!),
  fanout: () => fanoutScenario(services, Number(values['fanout-clients']), Number(values['fanout-held']), Number(values['fanout-frames'])),
  cluster: () => clusterScenario(services, Number(values['cluster-count'])),
  fleet: () => fleetScenario(services, values['fleet-devices']!.split(',').map(Number)),
  restart: () => restartScenario(services, values['restart-devices']!.split(',').map(Number)),
};

// A bench stopped by a signal or a failed scenario leaves no broker behind (its persistence autosave of
// a million queued messages slowed every later run on the machine), and no hub (spawnHub kills them at exit).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}: stopping\n`);
    void Promise.resolve(broker?.stop()).finally(() => process.exit(130));
  });
}
const selected = values.only ? values.only.split(',') : Object.keys(scenarios);
const figures: Figure[] = [];
try {
  for (const name of selected) {
    const run = scenarios[name];
    if (!run) throw new Error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`);
    process.stderr.write(`bench: ${name}…\n`);
    figures.push(...(await run()));
  }
} finally {
  await broker?.stop();
}
printTable(figures);
process.stdout.write(`\nbroker: ${broker ? 'Mosquitto with deploy/mosquitto/mosquitto.conf, started by the bench' : services.mqttUrl}\n`);
process.stdout.write(`results: ${saveResults(figures)}\n`);
process.exit(0);
