import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeviceState } from '../../src/domain/device-state.js';
import type { StatusChange } from '../../src/domain/device-status.js';
import { DeviceRegistry } from '../../src/hub/device-registry.js';
import { ALL_CHANNEL, FramePublisher } from '../../src/hub/frame-publisher.js';
import { OfflineTimeouts } from '../../src/hub/offline-timeouts.js';
import type { DeviceObserver } from '../../src/hub/outlets.js';
import { PresenceTracker } from '../../src/hub/presence-tracker.js';
import { LATE_EXPIRY_MS } from '../../src/presence/late-expiry.js';
import { createMemoryPresence } from '../../src/presence/memory-presence.js';
import type { PresenceStore } from '../../src/presence/presence-store.js';
import { counted, quietBoundary, recordingLocalFanout, recordingSink } from '../helpers/hub-parts.js';

/** The presence state machine: expiries, claims, remote transitions, reconcile and the mass-offline incident. */

const T0 = Date.UTC(2026, 0, 1);
const TIMEOUT = 60_000;

type Claim = (change: StatusChange) => boolean | Promise<boolean>;

/** A presence store that records touches and claims and answers claims as told. */
function fakeStore(claim: Claim = () => true, lastSeen: (ids: readonly string[]) => (number | null)[] = (ids) => ids.map(() => null)) {
  const touches: [string, number, number][] = [];
  const claims: StatusChange[] = [];
  const store: PresenceStore = {
    kind: 'redis',
    start: async () => undefined,
    touch: (id, at, timeoutMs) => void touches.push([id, at, timeoutMs]),
    claim: (change) => {
      claims.push(change);
      return claim(change);
    },
    lastSeen: async (ids) => lastSeen(ids),
    health: () => ({ ok: true, detail: 'fake' }),
    stop: async () => undefined,
  };
  return { store, touches, claims };
}

interface Setup {
  /** A real store (else `fake`, else a fake that wins every claim). */
  readonly store?: PresenceStore;
  readonly fake?: ReturnType<typeof fakeStore>;
  readonly owns?: (id: string) => boolean;
  readonly massOffline?: { minDevices: number; share: number; windowMs: number };
}

function trackerWith(setup: Setup = {}) {
  const registry = new DeviceRegistry({ maxDevices: 1000, newPerS: 1e6, burst: 1e6 }, Date.now);
  const { fanout, delivered } = recordingLocalFanout();
  void fanout.follow(ALL_CHANNEL);
  const sink = recordingSink();
  const { metrics, faults } = quietBoundary();
  const calls: string[] = [];
  const announced: StatusChange[] = [];
  const observer = { statusAnnounced: (_s: DeviceState, change: StatusChange) => void announced.push(change) } as unknown as DeviceObserver;
  const fake = setup.fake ?? fakeStore();
  const tracker = new PresenceTracker({
    registry,
    store: setup.store ?? fake.store,
    timeouts: new OfflineTimeouts(TIMEOUT, undefined, null),
    insights: {
      beforeStatusChange: (state) => void calls.push(`before:${state.id}:${state.status}`),
      afterStatusChange: (state) => void calls.push(`after:${state.id}:${state.status}`),
    },
    commands: { deviceOnline: (id) => void calls.push(`commands:${id}`) },
    publisher: new FramePublisher(fanout, sink, metrics),
    summaries: { touch: (id) => void calls.push(`touch:${id}`) },
    outlets: { observer },
    metrics,
    faults,
    owns: setup.owns ?? (() => true),
    now: Date.now,
    flap: { transitions: 6, windowMs: 300_000 },
    massOffline: setup.massOffline ?? { minDevices: 20, share: 0.3, windowMs: 10_000 },
  });
  const device = (id: string): DeviceState => {
    const state = registry.admit(id);
    if (typeof state === 'string') throw new Error(state);
    return state;
  };
  const statusRows = () => sink.rows.flatMap((r) => (r.kind === 'status' ? [`${r.change.deviceId}:${r.change.status}:${r.change.reason}`] : []));
  // Status frames go to the device channel and `*`; `*` is followed here, so they are read there.
  const statusFrames = () => delivered.filter((d) => d.frame.type === 'status_change').map((d) => `${String(d.frame.device_id)}:${String(d.frame.status)}:${String(d.frame.reason)}`);
  return { tracker, registry, delivered, sink, metrics, calls, announced, fake, device, statusRows, statusFrames };
}

describe('PresenceTracker', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('with the in-process store: online when heard, offline as `timeout` once its timeout passes in silence', async () => {
    const store = createMemoryPresence({ sweepMs: 250, faults: quietBoundary().faults, now: Date.now });
    const t = trackerWith({ store });
    await store.start(t.tracker);
    t.tracker.heard(t.device('d1'), Date.now(), 'telemetry');
    expect(t.registry.get('d1')?.status).toBe('online');
    vi.advanceTimersByTime(TIMEOUT - 1);
    expect(t.registry.get('d1')?.status).toBe('online');
    vi.advanceTimersByTime(300);
    expect(t.registry.get('d1')?.status).toBe('offline');
    expect(t.statusRows()).toEqual(['d1:online:telemetry', 'd1:offline:timeout']);
    expect(t.statusFrames()).toEqual(['d1:online:telemetry', 'd1:offline:timeout']);
    expect(t.announced.map((c) => c.status)).toEqual(['online', 'offline']);
    expect(await counted(t.metrics.presenceTransitions, { status: 'offline', reason: 'timeout' })).toBe(1);
    await store.stop();
  });

  it('reports an expiry found more than LATE_EXPIRY_MS after its deadline as `reconcile` (not observed live)', () => {
    const t = trackerWith();
    t.tracker.heard(t.device('late'), T0, 'heartbeat');
    t.tracker.heard(t.device('live'), T0, 'heartbeat');
    vi.setSystemTime(T0 + TIMEOUT + LATE_EXPIRY_MS + 1);
    t.tracker.onExpired('late', T0, T0 + TIMEOUT);
    vi.setSystemTime(T0 + TIMEOUT + LATE_EXPIRY_MS);
    t.tracker.onExpired('live', T0, T0 + TIMEOUT);
    expect(t.statusRows()).toEqual(['late:online:heartbeat', 'live:online:heartbeat', 'late:offline:reconcile', 'live:offline:timeout']);
  });

  it('re-arms a device heard after the store wrote its deadline: still online, deadline moved, nothing announced', () => {
    const t = trackerWith();
    const state = t.device('d1');
    t.tracker.heard(state, T0, 'telemetry');
    t.tracker.heard(state, T0 + 50_000, 'telemetry');
    const framesBefore = t.delivered.length;
    const touchesBefore = t.fake.touches.length;
    vi.setSystemTime(T0 + TIMEOUT + 100);
    t.tracker.onExpired('d1', T0, T0 + TIMEOUT);
    expect(state.status).toBe('online');
    expect(t.fake.touches.slice(touchesBefore)).toEqual([['d1', T0 + 50_000, TIMEOUT]]); // re-armed from its last touch
    expect(t.fake.claims.at(-1)).toMatchObject({ deviceId: 'd1', status: 'online', reason: 'heartbeat' }); // taken back for any hub that saw the expiry
    expect(t.delivered.length).toBe(framesBefore);
    expect(t.statusRows()).toEqual(['d1:online:telemetry']);
  });

  it('won an expiry its registry already marked offline (its own reconcile claim on the way): reports the outage once', () => {
    const t = trackerWith({ fake: fakeStore(() => new Promise<boolean>(() => undefined)) });
    const state = t.device('d1');
    t.registry.setStatus(state, 'offline');
    state.lastSeen = T0 - TIMEOUT;
    t.tracker.onExpired('d1', T0 - TIMEOUT, T0);
    expect(t.statusRows()).toEqual(['d1:offline:reconcile']);
    expect(t.sink.rows[0]).toMatchObject({ change: { previous: 'online' } });
  });

  it('mirrors a remote transition for its clients without storing it (the claiming hub did)', () => {
    const t = trackerWith();
    const change: StatusChange = { deviceId: 'd1', status: 'online', previous: null, reason: 'telemetry', lastSeen: T0, at: T0 };
    t.tracker.onRemoteTransition(change);
    expect(t.registry.get('d1')).toMatchObject({ status: 'online', lastSeen: T0 });
    expect(t.statusFrames()).toEqual(['d1:online:telemetry']);
    expect(t.statusRows()).toEqual([]);
    expect(t.calls).toEqual(['before:d1:unknown', 'touch:d1', 'after:d1:online', 'commands:d1']);
  });

  it("on an instance that does not own the device: its state and fleet row follow, but only the owner pushes a frame", () => {
    const t = trackerWith({ owns: () => false });
    t.tracker.onRemoteTransition({ deviceId: 'd1', status: 'offline', previous: 'online', reason: 'timeout', lastSeen: T0, at: T0 + TIMEOUT });
    expect(t.registry.get('d1')?.status).toBe('offline');
    expect(t.delivered).toEqual([]);
    expect(t.calls).toEqual(['before:d1:unknown', 'touch:d1']);
  });

  it('claim lost: the registry moves at once, but the winner announces and stores it', () => {
    const t = trackerWith({ fake: fakeStore(() => false) });
    t.tracker.heard(t.device('d1'), T0, 'telemetry');
    expect(t.registry.get('d1')?.status).toBe('online');
    expect(t.delivered).toEqual([]);
    expect(t.sink.rows).toEqual([]);
  });

  it('claim won later (a remote store): announced once the store says so', async () => {
    const t = trackerWith({ fake: fakeStore(async () => true) });
    t.tracker.heard(t.device('d1'), T0, 'telemetry');
    expect(t.sink.rows).toEqual([]);
    await vi.waitFor(() => expect(t.statusRows()).toEqual(['d1:online:telemetry']));
    expect(t.statusFrames()).toEqual(['d1:online:telemetry']);
  });

  it('claim failing (the store away): announced anyway, availability over deduplication', async () => {
    const t = trackerWith({ fake: fakeStore(async () => Promise.reject(new Error('redis away'))) });
    t.tracker.heard(t.device('d1'), T0, 'telemetry');
    await vi.waitFor(() => expect(t.statusRows()).toEqual(['d1:online:telemetry']));
  });

  it('a quiet claim that fails (releasing a forgotten device) is reported, not left unhandled', async () => {
    const t = trackerWith({ fake: fakeStore(async () => Promise.reject(new Error('redis away'))) });
    t.tracker.release(t.device('d1'));
    await vi.waitFor(async () => expect(await counted(t.metrics.internalErrors, { entry: 'presence' })).toBe(1));
    expect(t.sink.rows).toEqual([]);
  });

  it('reconciles devices recorded online whose presence is gone: past their timeout offline, else re-armed', async () => {
    const t = trackerWith({ fake: fakeStore(() => true, (ids) => ids.map((id) => (id === 'present' ? T0 : null))) });
    for (const id of ['stale', 'recent', 'present']) {
      const state = t.device(id);
      t.registry.setStatus(state, 'online');
      state.lastSeen = id === 'stale' ? T0 - 2 * TIMEOUT : T0 - 1000;
    }
    expect(await t.tracker.reconcile()).toEqual({ checked: 3, offline: 1, held: 0 });
    expect(t.statusRows()).toEqual(['stale:offline:reconcile']);
    expect(t.fake.touches).toEqual([['recent', T0 - 1000, TIMEOUT]]);
  });

  it('a start-up grace holds the devices whose presence ran out before it: heard meanwhile, no transition; silent, offline (reconcile) at its end', async () => {
    vi.useFakeTimers({ now: Date.now(), toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const t = trackerWith({ fake: fakeStore(() => true, (ids) => ids.map(() => null)) });
      const now = Date.now();
      for (const id of ['keeps', 'stopped', 'expired']) {
        const state = t.device(id);
        t.registry.setStatus(state, 'online');
        state.lastSeen = now - 2 * TIMEOUT;
      }
      t.tracker.beginGrace(5000);
      expect(await t.tracker.reconcile()).toEqual({ checked: 3, offline: 0, held: 3 });
      // `expired`'s deadline passed before the start: its expiry, claimed by the sweep, is held too.
      t.tracker.onExpired('expired', now - 2 * TIMEOUT, now - TIMEOUT);
      t.tracker.heard(t.device('keeps'), now + 1000, 'telemetry');
      expect(t.statusRows()).toEqual([]);
      vi.advanceTimersByTime(5000);
      await vi.waitFor(() => expect(t.statusRows().sort()).toEqual(['expired:offline:reconcile', 'stopped:offline:reconcile']));
      expect(t.registry.get('keeps')!.status).toBe('online');
    } finally {
      vi.useRealTimers();
    }
  });

  it('retimes an online device at once: its deadline moves with its new timeout', () => {
    const t = trackerWith();
    const state = t.device('d1');
    t.tracker.heard(state, T0, 'telemetry');
    state.timeoutMs = 5000;
    t.tracker.retime(state);
    expect(t.fake.touches.at(-1)).toEqual(['d1', T0, 5000]);
  });

  describe('mass offline', () => {
    const wave = { minDevices: 3, share: 0.3, windowMs: 10_000 };

    function fleetOf(t: ReturnType<typeof trackerWith>, n: number): string[] {
      const ids = Array.from({ length: n }, (_, i) => `d${i}`);
      for (const id of ids) t.tracker.heard(t.device(id), T0, 'telemetry');
      return ids;
    }
    const incidentFrames = (t: ReturnType<typeof trackerWith>) =>
      t.delivered.filter((d) => d.frame.anomaly_type === 'mass_offline').map((d) => `${String(d.frame.state)}:${String((d.frame.data as { devices: number }).devices)}`);

    it('raises one incident for a wave, grows it as more go, clears it once most are back', async () => {
      const t = trackerWith({ massOffline: wave });
      const ids = fleetOf(t, 6);
      vi.setSystemTime(T0 + TIMEOUT + 100);
      for (const id of ids.slice(0, 4)) t.tracker.onExpired(id, T0, T0 + TIMEOUT);
      expect(incidentFrames(t)).toEqual(['raised:3', 'updated:4']);
      expect(t.tracker.inIncident('d0')).toBe(true);
      expect(t.tracker.inIncident('d5')).toBe(false);
      for (const id of ids.slice(0, 4)) t.tracker.heard(t.device(id), Date.now(), 'telemetry');
      expect(incidentFrames(t)).toEqual(['raised:3', 'updated:4', 'cleared:4']);
      expect(await counted(t.metrics.massOfflineIncidents)).toBe(1);
      const stored = t.sink.rows.flatMap((r) => (r.kind === 'alert' ? [`${r.alert.deviceId}:${r.alert.type}:${String(r.transition)}`] : []));
      expect(stored).toEqual(['*:mass_offline:raised', '*:mass_offline:updated', '*:mass_offline:cleared']);
    });

    it('is spoken for by the owner of `*` only', () => {
      const t = trackerWith({ massOffline: wave, owns: (id) => id !== ALL_CHANNEL });
      const ids = fleetOf(t, 6);
      vi.setSystemTime(T0 + TIMEOUT + 100);
      for (const id of ids.slice(0, 4)) t.tracker.onExpired(id, T0, T0 + TIMEOUT);
      expect(incidentFrames(t)).toEqual([]);
      expect(t.tracker.inIncident('d0')).toBe(true); // every instance still knows who is covered
    });
  });
});
