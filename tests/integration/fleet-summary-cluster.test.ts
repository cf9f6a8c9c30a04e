import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, startTestHub, testHubEnv, wsUrl } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';

/**
 * Fleet summaries in a cluster of two in-process instances on Mosquitto (shared subscription) and
 * Redis: a client on either instance gets every device's row, also of the devices the other owns,
 * in its full snapshot and in the deltas after it.
 */
const run = randomSuffix();
const ids = Array.from({ length: 25 }, (_, i) => `fc-${run}-${i}`);
const hubs: RunningHub[] = [];
let device: Awaited<ReturnType<typeof deviceClient>>;

interface Row {
  id: string;
  battery_level: number | null;
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const rows = (frames: Frame[]): Row[] => frames.filter((f) => f.type === 'fleet_summary').flatMap((f) => f.devices as Row[]);

beforeAll(async () => {
  const shared = testHubEnv('services');
  for (const name of ['a', 'b']) {
    hubs.push(
      await startTestHub('services', {
        ...shared,
        MQTT_CLIENT_ID: `vigil-test-${name}-${run}`,
        DATA_DIR: `${shared.DATA_DIR}-${name}`,
        CLUSTER_ENABLED: 'true',
        CLUSTER_INSTANCE_ID: `${name}-${run}`,
        FLEET_SUMMARY_INTERVAL_MS: '150',
        FLEET_SUMMARY_CHUNK: '10',
      }),
    );
  }
  device = await deviceClient(hubs[0]!, hubs[0]!.config.MQTT_TOPIC_PREFIX);
}, 60_000);

afterAll(async () => {
  await device?.client.endAsync();
  for (const hub of hubs) await hub.stop();
});

it('a client on one instance sees the rows of devices the other instance owns, in the full snapshot and the deltas', async () => {
  const [a, b] = hubs as [RunningHub, RunningHub];
  // Both instances see both members: every device has exactly one owner.
  await until('two members on both', () => (ids.every((id) => a.hub.owner.isLocal(id) !== b.hub.owner.isLocal(id)) ? true : undefined));
  const ownedByB = ids.filter((id) => !a.hub.owner.isLocal(id));
  const ownedByA = ids.filter((id) => a.hub.owner.isLocal(id));
  expect(ownedByB.length).toBeGreaterThan(0);
  expect(ownedByA.length).toBeGreaterThan(0);
  for (const [i, id] of ids.entries()) await device.telemetry(id, { battery_level: 30 + i });
  // Each owner holds its devices' readings.
  await until('readings at their owners', () => (ids.every((id, i) => hubs.find((h) => h.hub.owner.isLocal(id))!.hub.registry.get(id)?.telemetry?.batteryLevel === 30 + i) ? true : undefined));

  const client = await TestClient.connect(wsUrl(a));
  expect((await client.request({ type: 'subscribe_all', summaries: true }, 1)).type).toBe('ack');
  // The full snapshot (plus, until the rows of B arrive, deltas) names every device with its battery.
  await until('every battery at A', () => {
    const latest = new Map(rows(client.frames).map((r) => [r.id, r.battery_level]));
    return ids.every((id, i) => latest.get(id) === 30 + i) ? true : undefined;
  });
  const chunks = client.frames.filter((f) => f.type === 'fleet_summary' && f.full === true);
  expect(chunks.every((f) => (f.devices as Row[]).length <= 10)).toBe(true);

  // A reading of a device B owns reaches A's client within the interval.
  const target = ownedByB[0]!;
  const from = client.frames.length;
  await device.telemetry(target, { battery_level: 3 });
  await until('the delta from B', () => rows(client.frames.slice(from)).find((r) => r.id === target && r.battery_level === 3));
  // A client joining later gets B's rows in the full snapshot alone (A keeps the newest row of each).
  const late = await TestClient.connect(wsUrl(a));
  expect((await late.request({ type: 'subscribe_all', summaries: true }, 1)).type).toBe('ack');
  await until('the full snapshot', () => late.frames.find((f) => f.type === 'fleet_summary' && f.full === true && f.last === true));
  const full = new Map(rows(late.frames.filter((f) => f.full === true)).map((r) => [r.id, r.battery_level]));
  for (const [i, id] of ids.entries()) expect(full.get(id), id).toBe(id === target ? 3 : 30 + i);
  late.close();
  const text = await (await fetch(`http://127.0.0.1:${b.port}/metrics`)).text();
  expect(text).toMatch(/vigil_fleet_summary_peer_batches_total\{direction="out"\} [1-9]/);
  client.close();
}, 60_000);
