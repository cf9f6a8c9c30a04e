import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startTestHub, wsUrl, type HubMode } from '../helpers/hub.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';
import { letTimePass } from '../helpers/wait.js';

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

async function until(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
