import { describe, expect, it, vi } from 'vitest';
import { IngestEntry, type IngestHub, type MessageRouting } from '../../src/cluster/ingest-entry.js';
import { createOwnerApi, type ClusterPort } from '../../src/cluster/owner-api/index.js';
import type { DeviceState } from '../../src/domain/device-state.js';
import { blankState } from '../../src/domain/device-state.js';
import type { Telemetry } from '../../src/domain/telemetry.js';
import { TOO_OLD } from '../../src/domain/reading-age.js';
import type { SkipReason } from '../../src/domain/readings.js';
import { statusBody } from '../../src/domain/status-body.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';

/** The one entry of device messages, with a fake hub: who handles a message, and what the owner said. */

const limits = { maxPayloadBytes: 65_536, maxMetricKeys: 64, maxFutureSkewMs: 60_000, maxMetricDepth: 4 };
const DAY = 86_400_000;

function fakeHub(refuse: 'device_limit' | null = null) {
  const calls: string[] = [];
  const invalid: string[] = [];
  const hub: IngestHub = {
    registry: { admit: (id): DeviceState | 'device_limit' => refuse ?? blankState(id) },
    ingestTelemetry: (t: Telemetry) => void calls.push(`telemetry ${t.deviceId} ${t.batteryLevel}`) === undefined,
    heartbeat: (id, at) => void calls.push(`heartbeat ${id} ${at}`) === undefined,
    deviceSaid: (id, online) => void calls.push(`said ${id} ${online}`) === undefined,
    availabilityHold: (id, held) => void calls.push(`hold ${id} ${held}`),
    countInvalid: (reason) => void invalid.push(reason),
    commands: { acknowledge: (id, commandId, status) => void calls.push(`ack ${id} ${commandId} ${status}`) === undefined },
  };
  return { hub, calls, invalid };
}

function singleEntry(refuse: 'device_limit' | null = null, router?: MessageRouting) {
  const fake = fakeHub(refuse);
  const skipped: SkipReason[] = [];
  const entry = new IngestEntry({ hub: fake.hub, owner: createOwnerApi(undefined, createMetrics()), router, limits, maxReadingAgeMs: 30 * DAY, onSkip: (r) => void skipped.push(r) });
  return { entry, skipped, ...fake };
}

describe('IngestEntry on a single instance', () => {
  it('routes nothing: every MQTT message is handled here, straight to the hub', () => {
    const { entry, calls } = singleEntry();
    expect(entry.clustered).toBe(false);
    expect(entry.route('d-1', 'devices/d-1/telemetry', Buffer.from('{}'), 1, false)).toBe(false);
    expect(entry.heartbeat('d-1', 5)).toBe(true);
    expect(entry.deviceSaid('d-1', false, 6)).toBe(true);
    expect(calls).toEqual(['heartbeat d-1 5', 'said d-1 false']);
  });

  it('ingests a POST /status synchronously: the MQTT validation, then the hub (a Last Will when online is false)', () => {
    const { entry, calls } = singleEntry();
    expect(entry.status('d-1', { device_id: 'd-1', battery_level: 50, online: false }, Date.now())).toEqual({ kind: 'accepted' });
    expect(calls).toEqual(['telemetry d-1 50', 'said d-1 false']);
  });

  it('reads a POST /status body as tolerantly as MQTT telemetry: booleans, nested objects, skipped readings counted', () => {
    const { entry, hub, skipped } = singleEntry();
    const ingested: Telemetry[] = [];
    hub.ingestTelemetry = (t) => void ingested.push(t) === undefined;
    const body = { device_id: 'd-1', battery_level: 40, metrics: { occupancy: true, env: { t: 21.5 }, energy: [230, 231], mode: 'eco', gone: null } };
    // The route's schema lets it through (it answered 400 before) …
    expect(statusBody.safeParse(body).success).toBe(true);
    // … and the same decoding as MQTT's stores what it can and counts the rest.
    expect(entry.status('d-1', body, Date.now())).toEqual({ kind: 'accepted' });
    expect(ingested.map((t) => [t.batteryLevel, { ...t.metrics }])).toEqual([[40, { occupancy: 1, 'env.t': 21.5, 'energy.0': 230, 'energy.1': 231 }]]);
    expect(skipped.sort()).toEqual(['null', 'string']);
    // Bounded as MQTT's: more than MAX_METRIC_KEYS readings once flattened is refused.
    const many = { device_id: 'd-1', metrics: { a: Object.fromEntries([...Array(65).keys()].map((k) => [`m${k}`, true])) } };
    expect(entry.status('d-1', many, Date.now())).toMatchObject({ kind: 'invalid', reason: 'too_many_metrics' });
  });

  it('answers an invalid or too old body, and a refused new device, without touching the hub', () => {
    const { entry, calls, invalid } = singleEntry();
    expect(entry.status('d-1', { device_id: 'd-1', metrics: 'many' }, Date.now())).toMatchObject({ kind: 'invalid', field: 'body' });
    expect(entry.status('d-1', { device_id: 'd-1', timestamp: Date.now() - 40 * DAY }, Date.now())).toEqual({ kind: 'invalid', field: 'timestamp', reason: TOO_OLD, detail: 'older than the retention window (RETENTION_DAYS)' });
    expect(invalid).toHaveLength(2);
    expect(calls).toEqual([]);
    const full = singleEntry('device_limit');
    expect(full.entry.status('d-2', { device_id: 'd-2', battery_level: 1 }, Date.now())).toEqual({ kind: 'refused', reason: 'device_limit' });
    expect(full.calls).toEqual([]);
  });
});

describe('IngestEntry in a cluster', () => {
  /** Two instances; `b-…` devices are b's. `silent`: b does not answer. */
  function twoInstances(silent = false) {
    const entries = new Map<string, IngestEntry>();
    const owners = new Map<string, ReturnType<typeof createOwnerApi>>();
    const port = (self: string): ClusterPort => {
      const ownerOf = (id: string) => (id.startsWith('b-') ? 'b' : 'a');
      return {
        owns: (id) => ownerOf(id) === self,
        ownerOf,
        askOwner: async (op, id, body) => (silent ? null : owners.get(ownerOf(id))!.answer(op, id, JSON.parse(JSON.stringify(body)))),
        askAll: async () => [],
        log: createLogger('silent'),
      };
    };
    const hubs = new Map<string, ReturnType<typeof fakeHub>>();
    const router: MessageRouting = { route: vi.fn((id: string) => id.startsWith('b-')) };
    for (const id of ['a', 'b']) {
      const fake = fakeHub();
      const owner = createOwnerApi(port(id), createMetrics());
      owners.set(id, owner);
      hubs.set(id, fake);
      entries.set(id, new IngestEntry({ hub: fake.hub, owner, router, limits, maxReadingAgeMs: 30 * DAY, onSkip: () => undefined }));
    }
    return { a: entries.get('a')!, hubs, router };
  }

  it('leaves the MQTT decision to the router (another owner’s device: skipped here)', () => {
    const { a, router } = twoInstances();
    expect(a.clustered).toBe(true);
    expect(a.route('b-1', 'devices/b-1/telemetry', Buffer.from('{}'), 1, false)).toBe(true);
    expect(a.route('a-1', 'devices/a-1/telemetry', Buffer.from('{}'), 1, false)).toBe(false);
    expect(router.route).toHaveBeenCalledTimes(2);
  });

  it('forwards a POST /status about another owner’s device through the owner API, and answers its outcome', async () => {
    const { a, hubs } = twoInstances();
    const here = a.status('a-1', { device_id: 'a-1', battery_level: 10 }, Date.now());
    expect(here).toEqual({ kind: 'accepted' });
    const there = a.status('b-1', { device_id: 'b-1', battery_level: 20, extra: 'kept' }, Date.now());
    expect(there).toBeInstanceOf(Promise);
    expect(await there).toEqual({ ok: true, value: { kind: 'accepted' } });
    expect(hubs.get('a')!.calls).toEqual(['telemetry a-1 10']);
    expect(hubs.get('b')!.calls).toEqual(['telemetry b-1 20']);
    // The owner's own validation answers for it.
    expect(await a.status('b-1', { device_id: 'b-1', timestamp: 1 }, Date.now())).toMatchObject({ ok: true, value: { kind: 'invalid', field: 'timestamp' } });
  });

  it('an owner that does not answer reads as ok: false (the route’s 503 owner_unavailable)', async () => {
    const { a, hubs } = twoInstances(true);
    expect(await a.status('b-1', { device_id: 'b-1', battery_level: 20 }, Date.now())).toEqual({ ok: false });
    expect(hubs.get('b')!.calls).toEqual([]);
  });
});
