import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startHubWithEnv, startTestHub, testHubEnv, wsUrl, type HubMode } from '../helpers/hub.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';
import { eventually, letTimePass } from '../helpers/wait.js';

const SETTINGS = {
  OFFLINE_TIMEOUT_S: '1',
  PRESENCE_SWEEP_MS: '100',
  MASS_OFFLINE_MIN_DEVICES: '5',
  MASS_OFFLINE_SHARE: '0.3',
  MASS_OFFLINE_WINDOW_S: '10',
  OFFLINE_ALERT_MINUTES: '0.03', // 1.8 s: a device the incident did not cover would raise its own alert by then
  OFFLINE_ALERT_CHECK_S: '0.2',
};

interface IncidentData {
  devices: number;
  returned: number;
  sample: string[];
}

/** A mass-offline incident grows with the devices that go down while it is open, and says how many came back. */
for (const mode of ['embedded', 'services'] as HubMode[]) {
  describe(`mass offline incident (${mode})`, () => {
    let hub: RunningHub;
    let device: Awaited<ReturnType<typeof deviceClient>>;
    let fleet: TestClient;

    // Its own database: fleet-wide alerts of other test files (cluster incidents) would crowd `/alerts`.
    const databases = freshDatabases();

    beforeAll(async () => {
      hub = await startTestHub(mode, mode === 'services' ? { ...SETTINGS, DATABASE_URL: await databases.create() } : SETTINGS);
      device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
      fleet = await TestClient.connect(wsUrl(hub));
      await fleet.request({ type: 'subscribe_all' }, 1);
    });
    afterAll(async () => {
      fleet?.close();
      await device?.client.endAsync();
      await hub?.stop();
      await databases.dropAll();
    });

    it('counts devices that join an open incident (frame and row) and clears saying how many returned', async () => {
      const run = randomSuffix();
      const first = Array.from({ length: 5 }, (_, i) => `${run}-a${i}`);
      const later = Array.from({ length: 5 }, (_, i) => `${run}-b${i}`);
      const incident = (state: string) => (f: Frame) => f.type === 'anomaly_alert' && f.anomaly_type === 'mass_offline' && f.state === state;
      for (const d of [...first, ...later]) await device.telemetry(d, {});
      // The later five stay alive while the first five go silent: the wave of five raises the incident.
      let keepAlive = true;
      const beating = (async () => {
        while (keepAlive) {
          for (const d of later) await device.telemetry(d, {});
          await letTimePass(250, 'the five alive devices report every 250 ms');
        }
      })();
      const raised = await fleet.next(incident('raised'), 5000);
      keepAlive = false;
      await beating;
      expect((raised.data as IncidentData).devices).toBe(5);

      // Now the later five go down inside it: each joins, and the incident says so.
      await fleet.next((f) => incident('updated')(f) && (f.data as IncidentData).devices === 10, 5000);
      const grown = fleet.frames.filter(incident('updated'));
      expect(grown.map((f) => (f.data as IncidentData).devices)).toEqual([6, 7, 8, 9, 10]);
      expect(new Set(grown.map((f) => f.alert_id))).toEqual(new Set([raised.alert_id]));
      const stored = async () => {
        const body = (await (await fetch(httpUrl(hub, '/alerts?state=all&severity=critical&limit=100'))).json()) as { alerts: { alert_id: string; state: string; data: IncidentData }[] };
        return body.alerts.find((a) => a.alert_id === raised.alert_id);
      };
      await until(async () => (await stored())?.data.devices === 10);
      // Past OFFLINE_ALERT_MINUTES: none of the ten raised an offline alert of its own.
      await letTimePass(2000, 'past OFFLINE_ALERT_MINUTES: an offline alert of their own would have come by now');
      expect(fleet.frames.filter((f) => f.type === 'anomaly_alert' && f.anomaly_type === 'device_offline')).toEqual([]);

      // Back: it clears at 80 % returned, and says so.
      for (const d of [...first, ...later]) await device.telemetry(d, {});
      const cleared = await fleet.next(incident('cleared'), 5000);
      expect(cleared.data).toMatchObject({ devices: 10, returned: 8 });
      await until(async () => (await stored())?.state === 'cleared');
      expect((await stored())?.data).toMatchObject({ devices: 10, returned: 8 });
    }, 30_000);
  });
}

interface StoredAlert {
  alert_id: string;
  state: string;
  anomaly_type?: string;
  type?: string;
  device_id: string;
  data: IncidentData & { ended?: string };
}

const isIncident = (state: string) => (f: Frame) => f.type === 'anomaly_alert' && f.anomaly_type === 'mass_offline' && f.state === state;

async function storedAlerts(hub: RunningHub): Promise<StoredAlert[]> {
  return ((await (await fetch(httpUrl(hub, '/alerts?state=all&limit=100'))).json()) as { alerts: StoredAlert[] }).alerts;
}

/** Reports `ids` every 250 ms until the returned stop is called. */
function beat(device: Awaited<ReturnType<typeof deviceClient>>, ids: readonly string[]): () => Promise<void> {
  let on = true;
  const loop = (async () => {
    while (on) {
      for (const d of ids) await device.telemetry(d, {});
      await letTimePass(250, 'alive devices report every 250 ms');
    }
  })();
  return async () => {
    on = false;
    await loop;
  };
}

/**
 * An incident's bounds: it takes joiners only while the wave goes on (MASS_OFFLINE_WINDOW_S after
 * the last), a restart alone ends the stored incident instead of leaving it raised for ever, and in
 * a cluster the instance that takes `*` over goes on with the same alert.
 */
describe('mass offline incident bounds (services)', () => {
  const databases = freshDatabases();
  const hubs: RunningHub[] = [];
  const clients: TestClient[] = [];
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const h of hubs) await h.stop().catch(() => undefined);
    await databases.dropAll();
  });
  const watch = async (hub: RunningHub) => {
    const c = await TestClient.connect(wsUrl(hub));
    clients.push(c);
    await c.request({ type: 'subscribe_all' }, 1);
    return c;
  };

  it('takes no joiner after MASS_OFFLINE_WINDOW_S without one: a device failing later gets its own offline alert; a restart alone ends the stored incident', async () => {
    const env = { ...testHubEnv('services'), ...SETTINGS, MASS_OFFLINE_WINDOW_S: '2', DATABASE_URL: await databases.create() };
    const hub = await startHubWithEnv(env);
    hubs.push(hub);
    const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
    const fleet = await watch(hub);
    const run = randomSuffix();
    const wave = Array.from({ length: 5 }, (_, i) => `${run}-w${i}`);
    const straggler = `${run}-late`;
    for (const d of [...wave, straggler]) await device.telemetry(d, {});
    const stop = beat(device, [straggler]);
    const raised = await fleet.next(isIncident('raised'), 5000);
    // The wave is over once 2 s pass without another device going down; then the straggler fails.
    await letTimePass(2500, 'past MASS_OFFLINE_WINDOW_S without a joiner');
    await stop();
    const own = await fleet.next((f) => f.type === 'anomaly_alert' && f.anomaly_type === 'device_offline' && f.device_id === straggler, 8000);
    expect(own.state).toBe('raised');
    expect(fleet.frames.filter(isIncident('updated'))).toEqual([]);
    await eventually('the incident stored as raised, five devices', async () => (await storedAlerts(hub)).find((a) => a.alert_id === raised.alert_id)?.data.devices === 5);

    // Restarted alone: nobody watched the fleet meanwhile, so the stored incident ends (not raised for ever).
    await device.client.endAsync();
    await hub.stop();
    const again = await startHubWithEnv(env);
    hubs.push(again);
    await eventually('the stored incident ended at the restart', async () => {
      const row = (await storedAlerts(again)).find((a) => a.alert_id === raised.alert_id);
      return row?.state === 'cleared' && row.data.ended === 'restart' && row.data.devices === 5;
    });
    await again.stop();
  }, 40_000);

  it('in a cluster, the instance that takes * over updates the same incident (same alert_id)', async () => {
    const shared: Record<string, string> = { ...testHubEnv("services"), ...SETTINGS, DATABASE_URL: await databases.create() };
    const run = randomSuffix();
    const pair: RunningHub[] = [];
    for (const name of ['a', 'b']) {
      pair.push(await startHubWithEnv({ ...shared, MQTT_CLIENT_ID: `vigil-test-${name}-${run}`, DATA_DIR: `${shared.DATA_DIR!}-${name}`, CLUSTER_ENABLED: 'true', CLUSTER_INSTANCE_ID: `${name}-${run}` }));
    }
    hubs.push(...pair);
    await eventually('two members on both', () => pair.every((h) => h.hub.owner.isLocal('*') !== pair.find((o) => o !== h)!.hub.owner.isLocal('*')), 20_000);
    const owner = pair.find((h) => h.hub.owner.isLocal('*'))!;
    const other = pair.find((h) => h !== owner)!;
    const fleet = await watch(other);
    const device = await deviceClient(other, other.config.MQTT_TOPIC_PREFIX);
    const wave = Array.from({ length: 5 }, (_, i) => `${run}-w${i}`);
    const later = `${run}-later`;
    for (const d of [...wave, later]) await device.telemetry(d, {});
    const stop = beat(device, [later]);
    const raised = await fleet.next(isIncident('raised'), 8000);
    // The owner of `*` leaves; the other takes `*` and the device that goes down now joins the same incident.
    await owner.stop();
    await eventually('the other instance owns *', () => other.hub.owner.isLocal('*'), 20_000);
    await stop();
    const updated = await fleet.next(isIncident('updated'), 8000);
    expect(updated.alert_id).toBe(raised.alert_id);
    expect((updated.data as IncidentData).devices).toBe(6);
    await device.client.endAsync();
  }, 60_000);
});

async function until(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
