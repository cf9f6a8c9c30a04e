import { afterEach, describe, expect, it } from 'vitest';
import { IngestEntry } from '../../src/cluster/ingest-entry.js';
import { OPERATIONS, type ClusterPort, type OperationName } from '../../src/cluster/owner-api/index.js';
import type { Alert } from '../../src/domain/alert.js';
import { alertData } from '../../src/domain/representations.js';
import { Faults } from '../../src/errors/boundary.js';
import { createLocalFanout } from '../../src/fanout/local-fanout.js';
import { healthOperations } from '../../src/hub/health-views.js';
import { Hub } from '../../src/hub/hub.js';
import { DEFAULT_HUB_SETTINGS } from '../../src/hub/hub-settings.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { createMemoryPresence } from '../../src/presence/memory-presence.js';
import type { VigilDb } from '../../src/storage/database.js';

/**
 * The owner API alone: what each operation's schemas accept and refuse, checked against what the
 * local implementation (a real hub on the in-process fan-out and presence) answers.
 */

const silent = createLogger('silent');
const limits = { maxPayloadBytes: 65_536, maxMetricKeys: 64, maxFutureSkewMs: 60_000, maxMetricDepth: 4 };
const noSink = { enqueueTelemetry() {}, enqueueStatusChange() {}, enqueueHealthScore() {}, enqueueAlert() {}, enqueueCommand() {} };
const hubs: Hub[] = [];

function localHub(cluster?: ClusterPort) {
  const metrics = createMetrics();
  const faults = new Faults(silent, metrics);
  const fanout = createLocalFanout({ windowMs: 120_000, maxBytesPerDevice: 65_536, ttlMs: 300_000, fleetWindowMs: 120_000, fleetMaxBytes: 1 << 20 });
  const presence = createMemoryPresence({ sweepMs: 1000, faults });
  const hub = new Hub({ ...DEFAULT_HUB_SETTINGS, fanout, presence, sink: noSink, metrics, faults, defaultTimeoutMs: 60_000, deviceLimits: { maxDevices: 100, newPerS: 1000, burst: 1000 }, ...(cluster ? { cluster } : {}) });
  // The health trend reads the database: these tests ask only about devices without a score.
  const unservedByHub = hub.owner.services.unserved();
  hub.owner.serve(healthOperations(hub.insights, {} as VigilDb));
  new IngestEntry({ hub, owner: hub.owner, router: undefined, limits, maxReadingAgeMs: 30 * 86_400_000, onSkip: () => undefined });
  hubs.push(hub);
  return { hub, metrics, unservedByHub };
}

afterEach(() => {
  for (const hub of hubs.splice(0)) hub.commands.stop();
});

const reading = (deviceId: string) => ({ device_id: deviceId, battery_level: 80, rssi: -60, response_time_ms: 12, error_rate: 0.01 });

describe('owner API schemas', () => {
  it('lists every operation once, with a wire name of its own and a target', () => {
    const wires = Object.values(OPERATIONS).map((op) => op.wire);
    expect(new Set(wires).size).toBe(wires.length);
    for (const op of Object.values(OPERATIONS)) expect(['owner', 'all']).toContain(op.to);
  });

  it('a hub serves its own operations; the health reads, the ingest entry and the rule store serve the rest', () => {
    const { hub, unservedByHub } = localHub();
    expect(unservedByHub.sort()).toEqual(['fleetHealth', 'health', 'ingestStatus', 'metricsSummary', 'reloadRules']);
    expect(hub.owner.services.unserved()).toEqual(['reloadRules']); // no rule store here (it needs the database)
  });

  it('accept what the local implementation answers, for every operation', async () => {
    const { hub } = localHub();
    const run = <K extends OperationName>(op: K, deviceId: string, body: unknown) => hub.owner.services.run(op, deviceId, OPERATIONS[op].request.parse(body) as never);
    expect(await run('ingestStatus', 'dev-1', { body: reading('dev-1'), receivedAt: Date.now() })).toEqual({ kind: 'accepted' });
    const submitted = await run('submitCommand', 'dev-1', { request: { command: 'reboot', params: { soft: true }, timeoutS: 30, maxAttempts: 3, expiresInS: 3600 }, idempotencyKey: 'k-1' });
    const answers: [OperationName, string, unknown][] = [
      ['snapshot', 'dev-1', undefined],
      ['heldCommands', 'dev-1', undefined],
      ['views', 'dev-1', ['dev-1', 'nobody']],
      ['applySettings', 'dev-1', { name: 'Pump 1', timeoutMs: 90_000 }],
      ['metricsSummary', 'dev-1', undefined],
      ['metricsSummary', 'nobody', undefined],
      ['health', 'nobody', undefined],
      ['ingestStatus', 'dev-2', { body: { device_id: 'dev-2', battery_level: 5, timestamp: 1 }, receivedAt: Date.now() }],
      ['alertDevice', '*', 'no-such-alert'],
      ['ackAlert', '*', { alertId: 'no-such-alert', by: 'api' }],
      ['fleetSummary', '*', undefined],
      ['fleetHealth', '*', { worst: 5, only: null }],
      ['forget', '*', 'dev-2'],
    ];
    expect(OPERATIONS.submitCommand.answer.safeParse(submitted).success).toBe(true);
    for (const [op, deviceId, body] of answers) {
      const answer = await run(op, deviceId, body);
      // Through JSON, as between instances.
      const checked = OPERATIONS[op].answer.safeParse(JSON.parse(JSON.stringify(answer ?? null)));
      expect(checked.success, `${op}: ${checked.error?.message}`).toBe(true);
    }
    expect((await run('views', 'dev-1', ['dev-1', 'nobody']))).toEqual([expect.objectContaining({ id: 'dev-1', name: 'Pump 1', timeoutMs: 90_000 }), null]);
    // The answers no local state here produces: checked on hand-made values.
    const alert: Alert = { id: 'a-1', deviceId: 'dev-1', type: 'low_battery', severity: 'major', state: 'acknowledged', data: { level: 5 }, raisedAt: 1, updatedAt: 2, clearedAt: null, acknowledgedAt: 2, acknowledgedBy: 'api' };
    expect(OPERATIONS.ackAlert.answer.safeParse(alertData(alert)).success).toBe(true);
    expect(OPERATIONS.reloadRules.answer.safeParse(3).success).toBe(true);
    expect(OPERATIONS.health.answer.safeParse({ device_id: 'dev-1', score: 90, trend: {} }).success).toBe(true);
  });

  it('refuse malformed bodies and answers', () => {
    const refused: [OperationName, 'request' | 'answer', unknown][] = [
      ['submitCommand', 'request', { request: { command: 'reboot' }, idempotencyKey: null }],
      ['submitCommand', 'request', { request: { command: 'reboot', params: {}, timeoutS: -1, maxAttempts: 3, expiresInS: 10 }, idempotencyKey: null }],
      ['views', 'request', []],
      ['views', 'request', 'dev-1'],
      ['applySettings', 'request', { timeoutMs: 'soon' }],
      ['applySettings', 'request', { colour: 'red' }],
      ['ingestStatus', 'request', { body: { device_id: 'dev-1', battery_level: 140 }, receivedAt: 1 }],
      ['ingestStatus', 'request', { body: { device_id: 'dev-1' } }],
      ['forget', 'request', 42],
      ['ackAlert', 'request', { alertId: 'a-1' }],
      ['reloadRules', 'request', '3'],
      ['fleetHealth', 'request', { worst: 0, only: null }],
      ['snapshot', 'request', { extra: true }],
      ['snapshot', 'answer', 42],
      ['submitCommand', 'answer', { command: { command_id: 'c-1' }, created: true }],
      ['views', 'answer', [{ id: 'dev-1', status: 'sleeping' }]],
      ['ingestStatus', 'answer', { kind: 'maybe' }],
      ['fleetHealth', 'answer', { devices: 1, sum: 50, distribution: [1], worst: [] }],
      ['ackAlert', 'answer', { alert_id: 'a-1' }],
      ['forget', 'answer', false],
    ];
    for (const [op, side, value] of refused) expect(OPERATIONS[op][side].safeParse(value).success, `${op} ${side} ${JSON.stringify(value)}`).toBe(false);
  });
});

/** Instances joined by a fake bus: each asks the others' answering side directly, through JSON like Redis. */
function fakeCluster(ids: string[], ownerOf: (deviceId: string) => string) {
  const answering = new Map<string, (op: string, deviceId: string, body: unknown) => Promise<string | null>>();
  const asked: { from: string; to: string; op: string }[] = [];
  const tamper = new Map<string, (reply: string | null) => string | null>();
  const port = (self: string): ClusterPort => {
    const ask = async (to: string, op: string, deviceId: string, body: unknown) => {
      asked.push({ from: self, to, op });
      const reply = await answering.get(to)!(op, deviceId, body === undefined ? undefined : JSON.parse(JSON.stringify(body)));
      const tampered = tamper.get(to);
      return tampered === undefined ? reply : tampered(reply);
    };
    return {
      owns: (deviceId) => ownerOf(deviceId) === self,
      ownerOf,
      askOwner: (op, deviceId, body) => ask(ownerOf(deviceId), op, deviceId, body),
      askAll: (op, body) => Promise.all(ids.map((to) => ask(to, op, '*', body))),
      log: silent,
    };
  };
  const instances = Object.fromEntries(ids.map((id) => [id, localHub(port(id))]));
  for (const id of ids) answering.set(id, (op, deviceId, body) => instances[id]!.hub.owner.answer(op, deviceId, body));
  return { instances, asked, tamper };
}

const invalidCalls = async (metrics: ReturnType<typeof createMetrics>) =>
  (await metrics.clusterInvalidCalls.get()).values.map((v) => ({ ...v.labels, n: v.value }));

describe('owner API proxy over a fake transport', () => {
  const owner = (deviceId: string) => (deviceId.startsWith('b-') ? 'b' : 'a');

  it('runs a call about its own device here, and one about another instance’s on its owner, typed', async () => {
    const { instances, asked } = fakeCluster(['a', 'b'], owner);
    const a = instances.a!.hub;
    const b = instances.b!.hub;
    expect(await a.owner.ingestStatus('b-1', { device_id: 'b-1', battery_level: 42 }, Date.now())).toEqual({ ok: true, value: { kind: 'accepted' } });
    expect(b.registry.get('b-1')?.telemetry?.batteryLevel).toBe(42);
    expect(a.registry.get('b-1')).toBeUndefined();
    const command = await a.submitCommand('b-1', { command: 'reboot', params: {}, timeoutS: 30, maxAttempts: 3, expiresInS: 60 }, 'key-1');
    expect(command).toMatchObject({ created: true, command: { device_id: 'b-1', command: 'reboot', state: 'queued' } });
    expect(asked).toEqual([
      { from: 'a', to: 'b', op: 'ingest-status' },
      { from: 'a', to: 'b', op: 'submit-command' },
    ]);
    // Owned here: answered synchronously, nothing asked.
    const here = a.submitCommand('a-1', { command: 'reboot', params: {}, timeoutS: 30, maxAttempts: 3, expiresInS: 60 }, null);
    expect(here).not.toBeInstanceOf(Promise);
    expect(asked).toHaveLength(2);
    const held = await a.owner.heldCommands('b-1');
    expect(held.ok && held.value.map((c) => c.command)).toEqual(['reboot']);
  });

  it('asks every instance and counts the ones that did not answer', async () => {
    const { instances, tamper } = fakeCluster(['a', 'b', 'c'], owner);
    const a = instances.a!;
    tamper.set('c', () => null);
    const rows = await a.hub.owner.fleetSummary();
    expect(rows.answers).toHaveLength(2);
    expect(rows.missing).toBe(1);
    expect(await invalidCalls(a.metrics)).toEqual([]);
  });

  it('refuses an answer that does not match its schema: counted, read as no answer', async () => {
    const { instances, tamper } = fakeCluster(['a', 'b'], owner);
    const a = instances.a!;
    tamper.set('b', () => JSON.stringify({ ok: true, value: { kind: 'accepted', extra: 1, device: 7 } }));
    const views = await a.hub.owner.views(['b-1']);
    expect(views).toEqual({ ok: false });
    tamper.set('b', () => 'not json');
    expect(await a.hub.owner.snapshot('b-1')).toEqual({ ok: false });
    expect(await invalidCalls(a.metrics)).toEqual(expect.arrayContaining([
      { op: 'views', side: 'answer', n: 1 },
      { op: 'snapshot', side: 'answer', n: 1 },
    ]));
  });

  it('refuses a malformed request before any service sees it, counted, without throwing', async () => {
    const { instances } = fakeCluster(['a', 'b'], owner);
    const b = instances.b!;
    const reply = await b.hub.owner.answer('submit-command', 'b-1', { request: { command: 'reboot' }, idempotencyKey: null });
    expect(JSON.parse(reply!)).toMatchObject({ ok: false, error: 'invalid_request', detail: expect.stringContaining('request.') });
    expect(JSON.parse((await b.hub.owner.answer('forget', '', 'b-1'))!)).toMatchObject({ ok: false, error: 'invalid_request', detail: expect.stringContaining('device') });
    expect(b.hub.commands.held('b-1')).toEqual([]);
    expect(await invalidCalls(b.metrics)).toEqual(expect.arrayContaining([
      { op: 'submit-command', side: 'request', n: 1 },
      { op: 'forget', side: 'request', n: 1 },
    ]));
    // An operation this version does not know: no answer, as before.
    expect(await b.hub.owner.answer('no-such-op', 'b-1', null)).toBeNull();
  });

  it('an asker reads a refusal as no answer (the HTTP layer’s owner_unavailable)', async () => {
    const { instances, tamper } = fakeCluster(['a', 'b'], owner);
    tamper.set('b', () => JSON.stringify({ ok: false, error: 'invalid_request', detail: 'x' }));
    expect(await instances.a!.hub.owner.applySettings('b-1', { name: 'x' })).toEqual({ ok: false });
    expect(await instances.a!.hub.owner.forget('b-1')).toEqual({ answers: [true], missing: 1 });
  });
});
