import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql as dsql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import type { Telemetry } from '../../src/domain/telemetry.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { openDatabase, resultRows } from '../../src/storage/database.js';
import { createWriter } from '../../src/storage/writer.js';
import { freshDatabases } from '../helpers/fresh-database.js';
import { deviceClient, httpUrl, startTestHub, wsUrl, type HubMode } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * Issue #15 item 2: one message the database cannot store must not stop storage. Each case runs on
 * a real hub (Mosquitto with a small in-flight window, or the embedded broker) and checks that a
 * control device's messages after the bad one are stored, pushed and acknowledged, past the window.
 */
const RECEIVE_MAXIMUM = 4;
const AFTER = RECEIVE_MAXIMUM * 3;

const databases = freshDatabases();
afterAll(() => databases.dropAll());

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const metricValue = async (hub: RunningHub, name: string, labels: string): Promise<number> => {
  const line = (await hub.metrics.scrape()).split('\n').find((l) => l.startsWith(`${name}{${labels}}`) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
};

const storedCount = async (hub: RunningHub, id: string): Promise<number> => {
  const reply = await fetch(httpUrl(hub, `/status/${id}/history?kind=telemetry&limit=1000`));
  if (reply.status !== 200) return 0;
  return ((await reply.json()) as { total_records: number }).total_records;
};

for (const mode of ['services', 'embedded'] as const satisfies readonly HubMode[]) {
  describe(`poison messages do not stop storage (${mode})`, () => {
    let hub: RunningHub;
    let device: Awaited<ReturnType<typeof deviceClient>>;
    let ws: TestClient;
    let sql: postgres.Sql | null = null;
    const commandsFor: Record<string, string[]> = {};
    const prefix = () => hub.config.MQTT_TOPIC_PREFIX;

    beforeAll(async () => {
      const overrides: Record<string, string> = { MQTT_RECEIVE_MAXIMUM: String(RECEIVE_MAXIMUM), WRITER_FLUSH_MS: '20' };
      if (mode === 'services') {
        overrides.DATABASE_URL = await databases.create();
        sql = postgres(overrides.DATABASE_URL, { max: 1, onnotice: () => undefined });
      }
      hub = await startTestHub(mode, overrides);
      device = await deviceClient(hub, prefix());
      await device.client.subscribeAsync(`${prefix()}/+/commands`, { qos: 1 });
      device.client.on('message', (topic, payload) => {
        (commandsFor[topic.split('/').at(-2)!] ??= []).push((JSON.parse(payload.toString()) as { command_id: string }).command_id);
      });
      ws = await TestClient.connect(wsUrl(hub));
    });
    afterAll(async () => {
      ws?.close();
      await device?.client.endAsync();
      await hub?.stop();
      await sql?.end();
    });

    /** Publishes one control message before `poison` and AFTER after it, then checks they all got through. */
    async function controlAround(poison: () => Promise<void>): Promise<string> {
      const control = `ctl-${randomSuffix()}`;
      await ws.request({ type: 'subscribe_device', device_id: control }, Math.floor(Math.random() * 1e9));
      const base = Date.now() - 60_000;
      const publish = (i: number) => device.telemetry(control, { timestamp: base + i, battery_level: 50, metrics: { i } });
      await publish(0);
      await poison();
      for (let i = 1; i <= AFTER; i++) await publish(i);
      await until(() => (ws.ofType('device_update', control).length === AFTER + 1 ? true : undefined), `${AFTER + 1} pushes of ${control}`);
      await until(async () => ((await storedCount(hub, control)) === AFTER + 1 ? true : undefined), `${AFTER + 1} rows of ${control} stored`);
      await until(async () => ((await metricValue(hub, 'vigil_mqtt_held_acks', '')) === 0 ? true : undefined), 'every ack released');
      expect((await fetch(httpUrl(hub, '/readyz'))).status).toBe(200);
      return control;
    }

    it('a NUL in a metric key is refused as unstorable_text; a control device before and after it is stored, pushed and acked', async () => {
      const bad = `nul-${randomSuffix()}`;
      await ws.request({ type: 'subscribe_device', device_id: bad }, 1);
      const before = await metricValue(hub, 'vigil_invalid_messages_total', 'reason="unstorable_text"');
      await controlAround(() => device.raw(`${bad}/telemetry`, '{"battery_level":10,"metrics":{"a\\u0000b":1}}'));
      expect(await metricValue(hub, 'vigil_invalid_messages_total', 'reason="unstorable_text"')).toBe(before + 1);
      expect(ws.ofType('device_update', bad)).toEqual([]);
    });

    it('a lone surrogate is refused the same way', async () => {
      const before = await metricValue(hub, 'vigil_invalid_messages_total', 'reason="unstorable_text"');
      await controlAround(() => device.raw(`sur-${randomSuffix()}/telemetry`, '{"metrics":{"\\ud800":1}}'));
      expect(await metricValue(hub, 'vigil_invalid_messages_total', 'reason="unstorable_text"')).toBe(before + 1);
    });

    it('a command ack whose result holds NUL is refused; later acks and commands are stored', async () => {
      const id = `cmd-${randomSuffix()}`;
      await device.telemetry(id, { battery_level: 90 });
      const send = async () => {
        const reply = await fetch(httpUrl(hub, `/devices/${id}/commands`), { method: 'POST', body: JSON.stringify({ command: 'probe' }), headers: { 'content-type': 'application/json' } });
        expect(reply.status).toBe(202);
        const { command_id } = (await reply.json()) as { command_id: string };
        await until(() => (commandsFor[id]?.includes(command_id) ? true : undefined), 'the command at the device');
        return command_id;
      };
      const ack = (commandId: string, result: string) => device.raw(`${id}/commands/ack`, `{"command_id":"${commandId}","status":"succeeded","result":${result}}`);
      const before = await metricValue(hub, 'vigil_invalid_messages_total', 'reason="unstorable_text"');
      const first = await send();
      await ack(first, '{"out":"a\\u0000"}');
      await until(async () => ((await metricValue(hub, 'vigil_invalid_messages_total', 'reason="unstorable_text"')) === before + 1 ? true : undefined), 'the ack counted');
      await ack(first, '{"out":"clean"}');
      const second = await send();
      await ack(second, '{"out":"also clean"}');
      const states = async () => {
        const listed = (await (await fetch(httpUrl(hub, `/devices/${id}/commands`))).json()) as { commands: { command_id: string; state: string; result: unknown }[] };
        return Object.fromEntries(listed.commands.map((c) => [c.command_id, c]));
      };
      const stored = await until(async () => {
        const s = await states();
        return s[first]?.state === 'succeeded' && s[second]?.state === 'succeeded' ? s : undefined;
      }, 'both commands stored as succeeded');
      expect(stored[first]!.result).toEqual({ out: 'clean' });
      await controlAround(async () => undefined);
    });

    it('a row the database refuses past validation goes to dead_letters; its batch, later messages and readiness carry on', async () => {
      const bad = `dl-${randomSuffix()}`;
      const before = await metricValue(hub, 'vigil_writer_rejected_rows_total', 'table="telemetry",reason="22P05"');
      // Straight into the hub, as a decoder bug or a new kind of refused value would let it through.
      const row: Telemetry = { deviceId: bad, ts: Date.now() - 1000, receivedAt: Date.now(), batteryLevel: 1, rssi: null, responseTimeMs: null, errorRate: null, metrics: { 'x\u0000': 1 } };
      await controlAround(async () => void hub.hub.ingestTelemetry(row));
      expect(await metricValue(hub, 'vigil_writer_rejected_rows_total', 'table="telemetry",reason="22P05"')).toBe(before + 1);
      expect(await storedCount(hub, bad)).toBe(0);
      if (sql !== null) {
        const letters = await sql<{ table_name: string; sqlstate: string; error: string; payload: string }[]>`select table_name, sqlstate, error, payload from dead_letters where device_id = ${bad}`;
        expect(letters).toHaveLength(1);
        expect(letters[0]).toMatchObject({ table_name: 'telemetry', sqlstate: '22P05', error: 'unsupported Unicode escape sequence' });
        expect(JSON.parse(letters[0]!.payload)).toEqual(row);
      }
    });

    it('HTTP bodies holding NUL or a lone surrogate get 422 unstorable_text with the field', async () => {
      const post = (path: string, body: string, method = 'POST') => fetch(httpUrl(hub, path), { method, body, headers: { 'content-type': 'application/json' } });
      const cases = [
        await post('/status', '{"device_id":"h1","metrics":{"t\\u0000":1}}'),
        await post('/devices/h1/commands', '{"command":"x","params":{"p":"\\ud800"}}'),
        await post('/devices/h1', '{"name":"bad\\u0000name"}', 'PUT'),
      ];
      const bodies = await Promise.all(cases.map(async (r) => ({ status: r.status, body: (await r.json()) as { detail: { loc: unknown[]; type: string }[] } })));
      expect(bodies.map((b) => b.status)).toEqual([422, 422, 422]);
      expect(bodies.map((b) => b.body.detail[0]!.loc)).toEqual([['body', 'metrics', 't\u0000'], ['body', 'params', 'p'], ['body', 'name']]);
      expect(bodies.every((b) => b.body.detail[0]!.type === 'unstorable_text')).toBe(true);
      expect(await metricValue(hub, 'vigil_http_refused_total', 'code="unstorable_text"')).toBe(3);
    });
  });
}

describe('a database outage is still retried with acks held (PostgreSQL refusing connections)', () => {
  it('holds acknowledgements and readiness while the database is away, then stores everything, nothing dead-lettered', async () => {
    const url = await databases.create();
    const name = new URL(url).pathname.slice(1);
    const admin = postgres(url.replace(`/${name}`, '/postgres'), { max: 1, onnotice: () => undefined });
    const hub = await startTestHub('services', { DATABASE_URL: url, MQTT_RECEIVE_MAXIMUM: String(RECEIVE_MAXIMUM), WRITER_FLUSH_MS: '20' });
    const device = await deviceClient(hub, hub.config.MQTT_TOPIC_PREFIX);
    const ws = await TestClient.connect(wsUrl(hub));
    try {
      const id = `out-${randomSuffix()}`;
      await ws.request({ type: 'subscribe_device', device_id: id }, 1);
      await admin.unsafe(`alter database ${name} allow_connections false`);
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name} and pid <> pg_backend_pid()`;
      const base = Date.now() - 60_000;
      for (let i = 0; i < AFTER; i++) void device.telemetry(id, { timestamp: base + i, battery_level: 40 });
      // The hub takes (and pushes) one window of messages, acknowledges none of them, and the broker waits.
      await until(() => (ws.ofType('device_update', id).length === RECEIVE_MAXIMUM ? true : undefined), 'one window pushed');
      await until(async () => ((await fetch(httpUrl(hub, '/readyz'))).status === 503 ? true : undefined), 'readyz 503');
      expect(ws.ofType('device_update', id)).toHaveLength(RECEIVE_MAXIMUM);
      await admin.unsafe(`alter database ${name} allow_connections true`);
      await until(async () => ((await storedCount(hub, id)) === AFTER ? true : undefined), 'every message stored after the outage', 30_000);
      expect(ws.ofType('device_update', id)).toHaveLength(AFTER);
      await until(async () => ((await metricValue(hub, 'vigil_mqtt_held_acks', '')) === 0 ? true : undefined), 'every ack released');
      expect((await fetch(httpUrl(hub, '/readyz'))).status).toBe(200);
      const text = await hub.metrics.scrape();
      expect(text).not.toMatch(/^vigil_writer_rejected_rows_total\{/m);
      expect(Number(/^vigil_writer_retries_total (\d+)/m.exec(text)?.[1])).toBeGreaterThan(0);
    } finally {
      await admin.unsafe(`alter database ${name} allow_connections true`);
      ws.close();
      await device.client.endAsync();
      await hub.stop();
      await admin.end();
    }
  });
});

describe('the writer dead-letters refused rows on both engines', () => {
  for (const engine of ['postgresql', 'pglite'] as const) {
    it(`keeps the rest of the batch, releases durability and logs no parameters (${engine})`, async () => {
      const url = engine === 'postgresql' ? await databases.create() : undefined;
      const database = await openDatabase({ url, dataDir: mkdtempSync(join(tmpdir(), 'vigil-dl-')) });
      const lines: string[] = [];
      const log = createLogger('info', { write: (line: string) => void lines.push(line) });
      const metrics = createMetrics();
      const writer = createWriter(database, { batchRows: 50, flushMs: 10_000, maxQueue: 1000, deviceRefreshMs: 60_000, log, metrics });
      const id = `w-${randomSuffix()}`;
      const at = Date.UTC(2026, 1, 1);
      for (let i = 0; i < 10; i++) {
        writer.enqueueTelemetry({ deviceId: id, ts: at + i, receivedAt: at + i, batteryLevel: 50, rssi: null, responseTimeMs: null, errorRate: null, metrics: i === 4 ? { 'secret\u0000key': 1 } : { i } });
      }
      writer.enqueueCommand({ id: `c-${id}`, deviceId: id, command: 'x', params: {}, state: 'succeeded', attempts: 1, maxAttempts: 1, timeoutS: 1, idempotencyKey: null, result: { out: '\ud800' }, createdAt: at, updatedAt: at, expiresAt: at + 1000 });
      const mark = writer.mark();
      await writer.flush();
      expect(writer.isDurable(mark)).toBe(true);
      expect(writer.stats().retrying).toBe(false);
      const stored = resultRows<{ n: number }>(await database.db.execute(dsql`select count(*)::int as n from telemetry where device_id = ${id}`));
      expect(stored[0]).toEqual({ n: 9 });
      const letters = resultRows<{ table_name: string; sqlstate: string; payload: string }>(
        await database.db.execute(dsql`select table_name, sqlstate, payload from dead_letters where device_id = ${id} order by table_name desc`),
      );
      expect(letters.map((l) => [l.table_name, l.sqlstate])).toEqual([['telemetry', '22P05'], ['commands', '22P02']]);
      expect(JSON.parse(letters[0]!.payload)).toMatchObject({ deviceId: id, ts: at + 4, metrics: { 'secret\u0000key': 1 } });
      expect(JSON.parse(letters[1]!.payload)).toMatchObject({ result: { out: '\ud800' } });
      const text = await metrics.scrape();
      expect(text).toMatch(/vigil_writer_rejected_rows_total\{table="telemetry",reason="22P05"\} 1/);
      expect(text).toMatch(/vigil_writer_rejected_rows_total\{table="commands",reason="22P02"\} 1/);
      expect(text).toMatch(/vigil_writer_rows_total\{table="telemetry"\} 9/);
      expect(lines.some((l) => l.includes('dead_letters'))).toBe(true);
      expect(lines.join('\n')).not.toMatch(/secret|insert into|params/);
      await writer.close();
      await database.close();
    }, 90_000); // a first PGlite start (initdb) takes 20 s on a busy two-core machine
  }
});

describe('a refused row whose dead letter is refused too', () => {
  it('is dropped, counted and logged without blocking the queue (PostgreSQL)', async () => {
    const database = await openDatabase({ url: await databases.create(), dataDir: '/nonexistent' });
    // A real refusal of the dead-letter insert: a constraint that no telemetry dead letter passes.
    await database.db.execute(dsql`alter table dead_letters add constraint refuse_telemetry check (table_name <> 'telemetry')`);
    const lines: string[] = [];
    const metrics = createMetrics();
    const writer = createWriter(database, { batchRows: 50, flushMs: 10_000, maxQueue: 1000, deviceRefreshMs: 60_000, log: createLogger('info', { write: (l: string) => void lines.push(l) }), metrics });
    const at = Date.UTC(2026, 1, 2);
    const row = (i: number, metrics: Record<string, number>): Telemetry => ({ deviceId: 'twice', ts: at + i, receivedAt: at + i, batteryLevel: null, rssi: null, responseTimeMs: null, errorRate: null, metrics });
    writer.enqueueTelemetry(row(0, { ok: 1 }));
    writer.enqueueTelemetry(row(1, { 'secret\u0000': 1 }));
    writer.enqueueTelemetry(row(2, { ok: 2 }));
    const mark = writer.mark();
    await writer.flush();
    expect(writer.isDurable(mark)).toBe(true);
    const stored = resultRows<{ n: number }>(await database.db.execute(dsql`select count(*)::int as n from telemetry where device_id = 'twice'`));
    expect(stored[0]).toEqual({ n: 2 });
    const text = await metrics.scrape();
    expect(text).toMatch(/vigil_writer_dead_letter_dropped_total\{table="telemetry"\} 1/);
    expect(text).toMatch(/vigil_writer_rejected_rows_total\{table="telemetry",reason="22P05"\} 1/);
    const dropped = lines.find((l) => l.includes('could not be dead-lettered'));
    expect(dropped).toContain('23514');
    expect(lines.join('\n')).not.toMatch(/secret|insert into|params/);
    await writer.close();
    await database.close();
  });
});
