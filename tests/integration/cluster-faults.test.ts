import { afterAll, beforeAll, expect, it } from 'vitest';
import { Cluster } from '../../src/cluster/cluster.js';
import { Membership } from '../../src/cluster/membership.js';
import { RedisBus } from '../../src/cluster/redis-bus.js';
import { Faults, InternalFault } from '../../src/errors/boundary.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';

/**
 * The cluster bus's boundaries on the real Redis: a handler that fails answers the asking instance
 * with an internal error (not the silence that reads as "owner unavailable"), is counted where it
 * failed, and the bus goes on delivering the next messages.
 */

interface Instance {
  readonly id: string;
  readonly bus: RedisBus;
  readonly membership: Membership;
  readonly cluster: Cluster;
  readonly metrics: Metrics;
}

const keyPrefix = `vigil-test:${randomSuffix()}:`;
const logged: string[] = [];
const log = createLogger('error', { write: (line: string) => void logged.push(line) });
const instances: Instance[] = [];

async function instance(id: string): Promise<Instance> {
  const metrics = createMetrics();
  const faults = new Faults(log, metrics);
  const bus = new RedisBus(SERVICES.redisUrl, log, faults);
  await bus.connect();
  const membership = new Membership({ redis: bus.commands, keyPrefix, instanceId: id, heartbeatMs: 200, leaseMs: 2000, log, faults });
  await membership.start();
  const cluster = new Cluster({ bus, membership, instanceId: id, keyPrefix, log, metrics, faults, rpcTimeoutMs: 2000 });
  await cluster.start(async (op) => {
    if (op === 'broken') throw new Error('the owner failed: postgres://vigil:owner-secret@db/vigil');
    return JSON.stringify({ ok: true, value: `${op} answered by ${id}` });
  });
  const made = { id, bus, membership, cluster, metrics };
  instances.push(made);
  return made;
}

const errorsAt = async (metrics: Metrics, entry: string) =>
  (await metrics.internalErrors.get()).values.find((v) => v.labels.entry === entry)?.value ?? 0;

let a: Instance;
let b: Instance;

beforeAll(async () => {
  a = await instance(`a-${randomSuffix()}`);
  b = await instance(`b-${randomSuffix()}`);
  const both = () => a.membership.list.length === 2 && b.membership.list.length === 2;
  for (let i = 0; i < 50 && !both(); i++) await new Promise((r) => setTimeout(r, 100));
  expect(both()).toBe(true);
});

afterAll(async () => {
  for (const i of instances) {
    await i.membership.stop();
    await i.bus.close();
  }
});

it('answers a failing owner query as an internal error, counted by the owner, and goes on answering', async () => {
  await expect(a.cluster.ask(b.id, 'broken', 'd1')).rejects.toBeInstanceOf(InternalFault);
  expect(await errorsAt(b.metrics, 'cluster')).toBe(1);
  // Reported as what it is: not a timeout ("owner unavailable").
  expect((await a.metrics.clusterRpcTimeouts.get()).values[0]?.value ?? 0).toBe(0);
  await expect(a.cluster.ask(b.id, 'snapshot', 'd1')).resolves.toBe(JSON.stringify({ ok: true, value: `snapshot answered by ${b.id}` }));
  // askAll: one instance's fault is the request's fault.
  await expect(a.cluster.askAll('broken')).rejects.toBeInstanceOf(InternalFault);
  for (let i = 0; i < 50 && (await errorsAt(b.metrics, 'cluster')) < 2; i++) await new Promise((r) => setTimeout(r, 50));
  expect(await errorsAt(b.metrics, 'cluster')).toBe(2);
  expect(await errorsAt(a.metrics, 'cluster')).toBe(1);
  // Logged where it failed (rate-limited), with the URL's password redacted.
  expect(logged.some((l) => l.includes('internal error in cluster') && l.includes('postgres://vigil:redacted@db'))).toBe(true);
  expect(logged.join('')).not.toContain('owner-secret');
});

it('catches a throwing route handler at the bus, under its own entry', async () => {
  const channel = `${keyPrefix}test-route:`;
  const seen: string[] = [];
  b.bus.route(channel, 'fanout', (suffix) => {
    if (suffix === 'bad') throw new Error('a frame handler failed');
    seen.push(suffix);
  });
  await b.bus.subscribe(`${channel}bad`);
  await b.bus.subscribe(`${channel}good`);
  await a.bus.publish(`${channel}bad`, 'x');
  await a.bus.publish(`${channel}good`, 'y');
  for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(seen).toEqual(['good']);
  expect(await errorsAt(b.metrics, 'fanout')).toBe(1);
});
