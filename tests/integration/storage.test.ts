import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/storage/database.js';
import { loadDeviceStates } from '../../src/storage/device-repository.js';
import { createWriter } from '../../src/storage/writer.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { runStorageContract } from '../contracts/storage.contract.js';
import { freshDatabases } from '../helpers/fresh-database.js';

const databases = freshDatabases();
const freshPostgresUrl = () => databases.create();
afterAll(() => databases.dropAll());

const pgliteDir = mkdtempSync(join(tmpdir(), 'vigil-pglite-'));
runStorageContract('postgresql', async () => openDatabase({ url: await freshPostgresUrl(), dataDir: '/nonexistent' }));
runStorageContract('pglite', async () => openDatabase({ dataDir: pgliteDir }));

describe('state survives a restart', () => {
  for (const engine of ['postgresql', 'pglite'] as const) {
    it(`restores devices and their newest telemetry (${engine})`, async () => {
      const url = engine === 'postgresql' ? await freshPostgresUrl() : undefined;
      const dataDir = mkdtempSync(join(tmpdir(), 'vigil-restart-'));
      const first = await openDatabase({ url, dataDir });
      const writer = createWriter(first, { batchRows: 100, flushMs: 20, maxQueue: 1000, deviceRefreshMs: 1000, log: createLogger('silent'), metrics: createMetrics() });
      const at = Date.UTC(2026, 1, 1);
      writer.enqueueTelemetry({ deviceId: 'survivor', ts: at, receivedAt: at, batteryLevel: 33, rssi: -70, responseTimeMs: null, errorRate: null, metrics: { t: 1 } });
      writer.enqueueStatusChange({ deviceId: 'survivor', status: 'online', previous: null, reason: 'telemetry', lastSeen: at, at });
      await writer.close();
      await first.close();
      const second = await openDatabase({ url, dataDir });
      const [state] = (await loadDeviceStates(second.db, 10)).states;
      expect(state).toMatchObject({ id: 'survivor', status: 'online', lastSeen: at, lastTelemetry: { batteryLevel: 33, metrics: { t: 1 } } });
      await second.close();
    });
  }
});

it('names the database that could not be reached', async () => {
  await expect(openDatabase({ url: 'postgres://postgres@127.0.0.1:1/none', dataDir: '/tmp' })).rejects.toThrow(/DATABASE_URL/);
});
