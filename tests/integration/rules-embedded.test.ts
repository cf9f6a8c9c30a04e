import { afterAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { deviceClient, httpUrl, startHubWithEnv, testHubEnv, wsUrl } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';

/*
 * Rules as data on the embedded hub (PGlite, aedes): a PUT judges the next message, the version
 * survives a restart of the same hub (same DATA_DIR) while ALERT_RULES stays the same, and an edited
 * ALERT_RULES is applied as a new version at the next start.
 */
const env: Record<string, string> = { ...testHubEnv('embedded'), ALERT_RULES: '[{"type":"hot","metric":"metrics.t","op":">","raise":50}]' };
const running: RunningHub[] = [];
afterAll(async () => {
  for (const h of running) await h.stop();
});

async function start(): Promise<RunningHub> {
  const hub = await startHubWithEnv(env);
  running.push(hub);
  return hub;
}

it('stores versions in the embedded database, applies a PUT to the next message, and keeps it across a restart', async () => {
  let hub = await start();
  const rules = async () => (await (await fetch(httpUrl(hub, '/rules'))).json()) as { version: number; source: string; rules: { type: string }[] };
  expect(await rules()).toMatchObject({ version: 1, source: 'env', rules: [{ type: 'hot' }] });
  const put = await fetch(httpUrl(hub, '/rules'), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'if-match': '"1"' },
    body: JSON.stringify({ rules: [{ type: 'warm', metric: 'metrics.t', op: '>', raise: 20 }] }),
  });
  expect(put.status).toBe(200);
  expect(put.headers.get('etag')).toBe('"2"');

  const id = `re-${randomSuffix()}`;
  const ws = await TestClient.connect(wsUrl(hub));
  expect((await ws.request({ type: 'subscribe_device', device_id: id }, 1)).type).toBe('ack');
  const device = await deviceClient(hub, 'devices');
  await device.telemetry(id, { metrics: { t: 25 } });
  expect(await ws.next((f) => f.type === 'anomaly_alert', 10_000)).toMatchObject({ anomaly_type: 'warm', state: 'raised', data: { value: 25, threshold: 20 } });
  ws.close();
  await device.client.endAsync();

  await hub.stop();
  running.pop();
  hub = await start();
  // ALERT_RULES is unchanged: the API's version 2 stays in force.
  expect(await rules()).toMatchObject({ version: 2, source: 'api', rules: [{ type: 'warm' }] });
  const reset = await fetch(httpUrl(hub, '/rules'), { method: 'DELETE', headers: { 'if-match': '"1"' } });
  expect(reset.status).toBe(412);
  expect((await fetch(httpUrl(hub, '/rules'), { method: 'DELETE' })).status).toBe(200);
  expect(await rules()).toMatchObject({ version: 3, source: 'reset', rules: [] });

  // ALERT_RULES edited and the hub restarted: the setting is applied as a new version.
  await hub.stop();
  running.pop();
  env.ALERT_RULES = '[{"type":"hotter","metric":"metrics.t","op":">","raise":60}]';
  hub = await start();
  expect(await rules()).toMatchObject({ version: 4, source: 'env', rules: [{ type: 'hotter' }] });
  // … once: the same setting at the next restart stores nothing.
  await hub.stop();
  running.pop();
  hub = await start();
  expect(await rules()).toMatchObject({ version: 4, source: 'env' });
}, 90_000);
