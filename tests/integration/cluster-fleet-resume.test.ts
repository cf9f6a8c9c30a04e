import { connectAsync } from 'mqtt';
import { afterAll, expect, inject, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { SERVICES, randomSuffix } from '../helpers/services.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';
import { letTimePass } from '../helpers/wait.js';

/*
 * The `*` feed in a cluster of three processes: one fleet_seq numbering for all instances (each
 * frame has the same number and text on every instance), and a dashboard that reconnects to
 * another instance — after a plain disconnect, and after its instance was SIGKILLed under load —
 * resumes with since_fleet_seq: every fleet frame once, in order, none missing.
 */
const run = randomSuffix();
const prefix = `f${run}/devices`;
const devices = Array.from({ length: 20 }, (_, i) => `${run}-f${i}`);
const hubs: (HubProcess | null)[] = [];
const clients: TestClient[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(hubs.map((h) => h?.stop()));
});

const env = (name: string): Record<string, string> => ({
  MQTT_URL: SERVICES.mqttUrl,
  REDIS_URL: SERVICES.redisUrl,
  DATABASE_URL: inject('postgresUrl'),
  REDIS_KEY_PREFIX: `vigil-fleet:${run}:`,
  MQTT_TOPIC_PREFIX: prefix,
  CLUSTER_ENABLED: 'true',
  CLUSTER_INSTANCE_ID: `${name}-${run}`,
  OFFLINE_TIMEOUT_S: '2',
  PRESENCE_SWEEP_MS: '100',
  PORT: '0',
  DATA_DIR: `/tmp/vigil-fleet-${run}-${name}`,
  LOG_LEVEL: 'info',
});

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const fleetFrames = (c: TestClient) => c.frames.filter((f) => f.type !== 'ack' && typeof f.fleet_seq === 'number');

async function dashboard(port: number, resume?: { since: number; epoch: string }): Promise<{ client: TestClient; ack: Frame }> {
  const client = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
  clients.push(client);
  const ack = await client.request({ type: 'subscribe_all', ...(resume ? { since_fleet_seq: resume.since, epoch: resume.epoch } : {}) }, 1);
  expect(ack, JSON.stringify(ack)).toMatchObject({ type: 'ack', fleet_seq: expect.any(Number), epoch: expect.any(String) });
  return { client, ack };
}

/** Telemetry whose battery swings each message, so most bring a health_score to `*`. */
async function publish(total: number, ratePerS: number): Promise<void> {
  const client = await connectAsync(SERVICES.mqttUrl, { clientId: `fpub-${randomSuffix()}`, clean: true });
  const started = Date.now();
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / ratePerS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const d = devices[i % devices.length]!;
    await client.publishAsync(`${prefix}/${d}/telemetry`, JSON.stringify({ battery_level: Math.floor(i / devices.length) % 2 === 0 ? 12 : 96 }), { qos: 1 });
  }
  await client.endAsync();
}

it('three instances number the * feed as one; a dashboard resumes it on another instance, also after its instance was killed', async () => {
  const [a, b, c] = [await spawnHub(env('a')), await spawnHub(env('b')), await spawnHub(env('c'))];
  hubs.push(a, b, c);
  await until('three members', async () => {
    const counts = await Promise.all([a, b, c].map(async (h) => Number(/^vigil_cluster_members (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${h.port}/metrics`)).text())?.[1] ?? 0)));
    return counts.every((n) => n === 3);
  });
  // A watcher on A and on B that never leave; the dashboard starts on A, the killed-instance one on C.
  const watchers = [await dashboard(a.port), await dashboard(b.port)];
  const first = await dashboard(a.port);
  const onC = await dashboard(c.port);
  const epoch = first.ack.epoch as string;
  for (const w of [...watchers, onC]) expect(w.ack.epoch).toBe(epoch);

  const publishing = publish(600, 60);
  await until('fleet frames flowing', () => fleetFrames(first.client).length >= 40);
  // A plain disconnect: resumes on B.
  first.client.close();
  const firstSeen = fleetFrames(first.client);
  await letTimePass(1500, 'events happen while it is away');
  const second = await dashboard(b.port, { since: (firstSeen.at(-1)?.fleet_seq as number | undefined) ?? (first.ack.fleet_seq as number), epoch });
  expect(second.ack).toMatchObject({ recovered: true });

  // C is killed under load: its dashboard resumes on A.
  await until('C serving fleet frames', () => fleetFrames(onC.client).length >= 40);
  await c.stop('SIGKILL');
  hubs[2] = null;
  await onC.client.waitClose();
  const cSeen = fleetFrames(onC.client);
  const third = await dashboard(a.port, { since: (cSeen.at(-1)?.fleet_seq as number | undefined) ?? (onC.ack.fleet_seq as number), epoch });
  expect(third.ack, JSON.stringify(third.ack)).toMatchObject({ recovered: true });

  await publishing;
  // Every device goes offline after the publisher stops: the last fleet events.
  const offline = (cl: TestClient) => new Set(cl.frames.filter((f) => f.type === 'status_change' && f.status === 'offline').map((f) => f.device_id)).size;
  await until('all offline everywhere', () => [...watchers.map((w) => w.client), second.client, third.client].every((cl) => offline(cl) >= devices.length), 30_000);
  await letTimePass(500, 'a frame out of order or repeated would arrive meanwhile');

  const contiguousFrom = (frames: Frame[], after: number) => frames.map((f) => f.fleet_seq as number).every((s, i) => s === after + 1 + i);
  const [wa, wb] = watchers.map((w) => fleetFrames(w.client));
  expect(contiguousFrom(wa!, watchers[0]!.ack.fleet_seq as number)).toBe(true);
  expect(contiguousFrom(wb!, watchers[1]!.ack.fleet_seq as number)).toBe(true);
  // One numbering: the same fleet_seq is the same frame on A and on B.
  const byNumber = new Map(wa!.map((f) => [f.fleet_seq as number, JSON.stringify(f)]));
  for (const f of wb!) if (byNumber.has(f.fleet_seq as number)) expect(JSON.stringify(f)).toBe(byNumber.get(f.fleet_seq as number));
  expect(wa!.at(-1)!.fleet_seq).toBe(wb!.at(-1)!.fleet_seq);

  for (const [before, after, ack] of [
    [firstSeen, fleetFrames(second.client), first.ack],
    [cSeen, fleetFrames(third.client), onC.ack],
  ] as const) {
    const joined = [...before, ...after];
    const seqs = joined.map((f) => f.fleet_seq as number);
    expect(contiguousFrom(joined, ack.fleet_seq as number), seqs.join(',')).toBe(true);
    expect(seqs.at(-1)).toBe(wa!.at(-1)!.fleet_seq);
    for (const f of joined) if (byNumber.has(f.fleet_seq as number)) expect(JSON.stringify(f)).toBe(byNumber.get(f.fleet_seq as number));
  }
  process.stdout.write(`cluster fleet: ${wa!.length} fleet frames on A; resumed after a disconnect with ${fleetFrames(second.client).length} and after a SIGKILL with ${fleetFrames(third.client).length} frames, none missing or twice\n`);
}, 120_000);
