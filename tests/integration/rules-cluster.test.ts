import { connectAsync, type MqttClient } from 'mqtt';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabases } from '../helpers/fresh-database.js';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';

/*
 * Rules as data on a three-process cluster over the real Mosquitto, Redis and PostgreSQL (a fresh
 * database: the rule set is fleet-wide, and would change every other test's alerts). A rule changed
 * over PUT /rules on one instance judges the very next message on every instance; versions, 412,
 * 422 with field details, escalation, staleness, DELETE and the version poll.
 */
const run = randomSuffix();
const prefix = `r${run}/devices`;
const devices = Array.from({ length: 12 }, (_, i) => `${run}-d${i}`);
const databases = freshDatabases();
const hubs: HubProcess[] = [];
const feeds: TestClient[] = [];
let mqtt: MqttClient;
let sql: postgres.Sql;

const INITIAL = [{ type: 'hot', metric: 'metrics.t', op: '>', raise: 50, severity: 'major' }];

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const url = (h: HubProcess, path: string) => `http://127.0.0.1:${h.port}${path}`;
const json = async (response: Response) => ({ status: response.status, etag: response.headers.get('etag'), body: (await response.json()) as Record<string, unknown> });
const getRules = async (h: HubProcess) => json(await fetch(url(h, '/rules')));
const putRules = async (h: HubProcess, body: unknown, ifMatch?: string) =>
  json(await fetch(url(h, '/rules'), { method: 'PUT', headers: { 'content-type': 'application/json', ...(ifMatch ? { 'if-match': ifMatch } : {}) }, body: JSON.stringify(body) }));
const publish = (device: string, body: unknown) => mqtt.publishAsync(`${prefix}/${device}/telemetry`, JSON.stringify(body), { qos: 1 });
const alerts = (feed: TestClient, type: string, state?: string) => feed.frames.filter((f: Frame) => f.type === 'anomaly_alert' && f.anomaly_type === type && (state === undefined || f.state === state));

beforeAll(async () => {
  const databaseUrl = await databases.create();
  sql = postgres(databaseUrl, { max: 1, onnotice: () => undefined });
  for (const name of ['a', 'b', 'c']) {
    hubs.push(
      await spawnHub({
        MQTT_URL: SERVICES.mqttUrl,
        REDIS_URL: SERVICES.redisUrl,
        DATABASE_URL: databaseUrl,
        REDIS_KEY_PREFIX: `vigil-rules:${run}:`,
        MQTT_TOPIC_PREFIX: prefix,
        CLUSTER_ENABLED: 'true',
        CLUSTER_INSTANCE_ID: `${name}-${run}`,
        ALERT_RULES: JSON.stringify(INITIAL),
        RULES_POLL_S: '1',
        PORT: '0',
        DATA_DIR: `/tmp/vigil-rules-${run}-${name}`,
      }),
    );
  }
  const members = async (h: HubProcess) => Number(/^vigil_cluster_members (\d+)/m.exec(await (await fetch(url(h, '/metrics'))).text())?.[1] ?? 0);
  await until('three members', async () => (await Promise.all(hubs.map(members))).every((n) => n === 3));
  for (const h of hubs) {
    const feed = await TestClient.connect(`ws://127.0.0.1:${h.port}/ws`);
    expect((await feed.request({ type: 'subscribe_all' }, 1)).type).toBe('ack');
    feeds.push(feed);
  }
  mqtt = await connectAsync(SERVICES.mqttUrl, { clientId: `rules-dev-${run}`, clean: true, reconnectPeriod: 0 });
}, 90_000);

afterAll(async () => {
  for (const f of feeds) f.close();
  await mqtt?.endAsync();
  await Promise.all(hubs.map((h) => h.stop()));
  await sql?.end();
  await databases.dropAll();
});

it('documents the rules API in the OpenAPI document from the route table', async () => {
  const doc = (await (await fetch(url(hubs[0]!, '/openapi.json'))).json()) as { paths: Record<string, Record<string, { 'x-scope'?: string; requestBody?: unknown; responses: Record<string, unknown> }>> };
  expect(Object.keys(doc.paths['/rules']!).sort()).toEqual(['delete', 'get', 'put']);
  expect(doc.paths['/rules']!.put).toMatchObject({ 'x-scope': 'admin', requestBody: expect.anything(), responses: expect.objectContaining({ '412': expect.anything(), '422': expect.anything() }) });
});

it('starts from ALERT_RULES as version 1 on every instance', async () => {
  for (const h of hubs) {
    const got = await getRules(h);
    expect(got).toMatchObject({ status: 200, etag: '"1"', body: { version: 1, source: 'env', rules: [expect.objectContaining({ type: 'hot', raise: 50 })], device_types: {}, devices: {} } });
  }
});

it('a rule changed over PUT /rules on one instance judges the next message on every instance', async () => {
  const put = await putRules(hubs[0]!, { rules: [{ type: 'cold', metric: 'metrics.t', op: '<', raise: 10, clear: 12, severity: 'minor' }] }, '"1"');
  expect(put).toMatchObject({ status: 200, etag: '"2"', body: { version: 2, source: 'api', applied: { instances: 3, missing: 0 } } });
  // No waiting: the answer came once every instance had applied version 2.
  for (const d of devices) await publish(d, { metrics: { t: 5 } });
  for (const feed of feeds) {
    await until('a cold alert for every device on every feed', async () => alerts(feed, 'cold', 'raised').length >= devices.length);
    expect(new Set(alerts(feed, 'cold', 'raised').map((f) => f.device_id))).toEqual(new Set(devices));
  }
  // And over REST on every instance: the stored alerts.
  for (const h of hubs) {
    await until('cold alerts in GET /alerts', async () => {
      const page = (await (await fetch(url(h, '/alerts?state=active&limit=100'))).json()) as { alerts: { device_id: string; anomaly_type: string }[] };
      return page.alerts.filter((a) => a.anomaly_type === 'cold' && devices.includes(a.device_id)).length === devices.length;
    });
  }
  // Each device is judged by its owner; the owners are spread over the instances.
  const owners = await Promise.all(hubs.map(async (h) => Number(/^vigil_rule_set_version (\d+)/m.exec(await (await fetch(url(h, '/metrics'))).text())?.[1])));
  expect(owners).toEqual([2, 2, 2]);
  for (const h of hubs) expect((await getRules(h)).body.version).toBe(2);
}, 30_000);

it('refuses a stale If-Match with 412, a malformed one with 400, and an invalid set with 422 naming each field', async () => {
  expect(await putRules(hubs[1]!, { rules: [] }, '"1"')).toMatchObject({ status: 412, etag: '"2"', body: { version: 2, error: { code: 'stale_version' } } });
  expect(await putRules(hubs[1]!, { rules: [] }, 'yesterday')).toMatchObject({ status: 400, body: { error: { code: 'invalid_if_match' } } });
  const bad = await putRules(hubs[2]!, { rules: [{ type: 'x', metric: 'metrics.t', op: '>' }], devices: { [devices[0]!]: [{ metric: 'nope', stale_after_s: 5 }] } }, '"2"');
  expect(bad.status).toBe(422);
  expect(bad.body.detail).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ loc: ['body', 'rules', 0, 'raise'], msg: 'raise is required (the threshold)' }),
      expect.objectContaining({ loc: ['body', 'devices', devices[0], 0, 'metric'] }),
    ]),
  );
  for (const h of hubs) expect((await getRules(h)).body.version).toBe(2);
  const refused = await (await fetch(url(hubs[1]!, '/metrics'))).text();
  expect(refused).toMatch(/^vigil_http_refused_total\{code="stale_version"\} 1$/m);
  expect(refused).toMatch(/^vigil_http_refused_total\{code="invalid_if_match"\} 1$/m);
});

it('escalates a held alert and raises stale:<metric> while the device still reports, per device type and per device', async () => {
  const [typed, own] = [devices[1]!, devices[2]!];
  // A device type for one device: through the devices API, on another instance than the rules.
  const typedPut = await fetch(url(hubs[2]!, `/devices/${typed}`), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'freezer' }) });
  expect(typedPut.status).toBe(200);
  const put = await putRules(
    hubs[1]!,
    {
      rules: [],
      device_types: { freezer: [{ type: 'thaw', metric: 'metrics.t', op: '>', raise: -10, severity: 'minor', escalation: [{ after_s: 1, severity: 'critical' }] }] },
      devices: { [own]: [{ metric: 'metrics.h', stale_after_s: 1, severity: 'major' }] },
    },
    '"2"',
  );
  expect(put).toMatchObject({ status: 200, body: { version: 3, applied: { missing: 0 } } });
  // The next message of every device: the cold alerts are cleared (their rule is gone).
  for (const d of devices) await publish(d, { metrics: { t: 5, h: 40 } });
  for (const feed of feeds) {
    await until('cold alerts cleared as rule_removed', async () => alerts(feed, 'cold', 'cleared').length >= devices.length);
    expect(alerts(feed, 'cold', 'cleared').every((f) => (f.data as Record<string, unknown>).cleared_because === 'rule_removed')).toBe(true);
    await until('thaw raised for the freezer only', async () => alerts(feed, 'thaw', 'raised').length >= 1);
    expect(alerts(feed, 'thaw', 'raised').map((f) => f.device_id)).toEqual([typed]);
  }
  // Held past after_s: the next message escalates it (an `updated` frame, and the stored row).
  await until('thaw escalated', async () => {
    await publish(typed, { metrics: { t: 0 } });
    await publish(own, { metrics: { t: 5 } }); // reporting, without h
    return feeds.every((f) => alerts(f, 'thaw', 'updated').length >= 1);
  });
  for (const feed of feeds) expect(alerts(feed, 'thaw', 'updated')[0]).toMatchObject({ device_id: typed, state: 'updated', severity: 'critical', data: expect.objectContaining({ escalated_from: 'minor' }) });
  await until('the stored alert escalated', async () => (await sql`select severity from alerts where device_id = ${typed} and type = 'thaw'`)[0]?.severity === 'critical');
  await until('stale:metrics.h raised', async () => {
    await publish(own, { metrics: { t: 5 } });
    return feeds.every((f) => alerts(f, 'stale:metrics.h', 'raised').length >= 1);
  });
  for (const feed of feeds) expect(alerts(feed, 'stale:metrics.h', 'raised').map((f) => f.device_id)).toEqual([own]);
  await publish(own, { metrics: { h: 41 } });
  for (const feed of feeds) await until('stale:metrics.h cleared', async () => alerts(feed, 'stale:metrics.h', 'cleared').length >= 1);
}, 60_000);

it('DELETE /rules goes back to the built-in rules as a new version; a version stored by hand is found by the poll', async () => {
  const deleted = await json(await fetch(url(hubs[2]!, '/rules'), { method: 'DELETE', headers: { 'if-match': '"3"' } }));
  expect(deleted).toMatchObject({ status: 200, body: { version: 4, source: 'reset', rules: [], device_types: {}, devices: {}, applied: { instances: 3, missing: 0 } } });
  await publish(devices[3]!, { battery_level: 5 });
  for (const feed of feeds) await until('built-in low_battery', async () => alerts(feed, 'low_battery', 'raised').some((f) => f.device_id === devices[3]));
  // Written straight into the database: no notice on the bus, so only the poll can find it.
  await sql`insert into rule_sets (version, document, source) values (5, ${sql.json({ rules: [{ type: 'low_battery', enabled: false }], device_types: {}, devices: {} })}, 'api')`;
  await until('every instance polled version 5', async () => (await Promise.all(hubs.map(getRules))).every((r) => r.body.version === 5), 10_000);
  await publish(devices[3]!, { battery_level: 5 });
  for (const feed of feeds) await until('low_battery cleared, its rule turned off', async () => alerts(feed, 'low_battery', 'cleared').some((f) => f.device_id === devices[3]));
}, 30_000);
