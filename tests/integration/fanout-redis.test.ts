import { afterAll } from 'vitest';
import { RedisBus } from '../../src/cluster/redis-bus.js';
import { Faults } from '../../src/errors/boundary.js';
import { createRedisFanout } from '../../src/fanout/redis-fanout.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { runFanoutContract } from '../contracts/fanout.contract.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';

// The same windows in Redis (the Lua script of redis-fanout-script.ts), on this machine's Redis.
const log = createLogger('error', { write: () => undefined });
const buses: RedisBus[] = [];
afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close()));
});

runFanoutContract('Redis (cluster)', async (settings) => {
  const metrics = createMetrics();
  const faults = new Faults(log, metrics);
  const bus = new RedisBus(SERVICES.redisUrl, log, faults);
  buses.push(bus);
  await bus.connect();
  return createRedisFanout({ ...settings, bus, keyPrefix: `vigil-test:${randomSuffix()}:`, instanceId: 'solo', log, metrics, faults });
});
