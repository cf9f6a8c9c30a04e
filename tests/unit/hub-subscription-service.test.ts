import { describe, expect, it } from 'vitest';
import type { DeviceState } from '../../src/domain/device-state.js';
import type { Fanout } from '../../src/fanout/fanout.js';
import { DeviceRegistry } from '../../src/hub/device-registry.js';
import { ALL_CHANNEL, FramePublisher } from '../../src/hub/frame-publisher.js';
import type { OwnerAnswer } from '../../src/cluster/owner-api/index.js';
import { SubscriptionService, type Prepared } from '../../src/hub/subscription-service.js';
import { quietBoundary, recordingLocalFanout, recordingSink, telemetry } from '../helpers/hub-parts.js';

/** First frames for a new follower: snapshot or resume, over the real in-process fan-out. */

const T0 = Date.UTC(2026, 0, 1);

interface Setup {
  /** Wraps the local fan-out (e.g. to look like the Redis one). */
  readonly fanout?: (local: Fanout) => Fanout;
  readonly ownerSnapshot?: (deviceId: string) => Promise<OwnerAnswer<string>>;
}

function serviceWith(setup: Setup = {}) {
  const local = recordingLocalFanout(() => T0);
  const fanout = setup.fanout?.(local.fanout) ?? local.fanout;
  const registry = new DeviceRegistry({ maxDevices: 100, newPerS: 1e6, burst: 1e6 }, () => T0);
  const publisher = new FramePublisher(fanout, recordingSink(), quietBoundary().metrics);
  const asked: string[] = [];
  const service = new SubscriptionService({
    fanout,
    registry,
    insights: { health: () => null, activeAlerts: () => [] },
    devices: { timeoutOf: (id) => (registry.get(id) ? { ms: 60_000, source: 'default' } : null) },
    ownerSnapshot: (id) => {
      asked.push(id);
      return setup.ownerSnapshot?.(id) ?? Promise.resolve({ ok: false });
    },
    now: () => T0,
  });
  const device = (id: string): DeviceState => {
    const state = registry.admit(id);
    if (typeof state === 'string') throw new Error(state);
    return state;
  };
  const readings = (state: DeviceState, n: number) => {
    for (let i = 0; i < n; i++) publisher.deviceUpdate(state, telemetry(state.id, T0 + i));
  };
  return { service, fanout, delivered: local.delivered, registry, device, readings, asked };
}

const parse = (frame: string) => JSON.parse(frame) as { type: string; seq: number; epoch?: string; data?: Record<string, unknown> };
const seqs = (prepared: Prepared) => prepared.frames.map((f) => parse(f).seq);

function sync(prepared: Prepared | Promise<Prepared>): Prepared {
  if (prepared instanceof Promise) throw new Error('expected an answer at once (single instance)');
  return prepared;
}

describe('SubscriptionService', () => {
  it('gives a new subscriber a snapshot at once, carrying the seq the stream continues after and the epoch', async () => {
    const { service, device, readings } = serviceWith();
    const state = device('d1');
    readings(state, 3);
    const followed = service.follow('d1');
    const prepared = sync(service.prepare('d1', null, followed));
    expect(prepared.recovered).toBeNull();
    expect(prepared.seq).toBe(3);
    const snapshot = parse(prepared.frames[0]!);
    expect(snapshot).toMatchObject({ type: 'snapshot', seq: 3, epoch: service.epoch, data: { offline_timeout_s: 60, offline_timeout_source: 'default' } });
    await followed;
  });

  it('snapshots an unknown device as seq 0, status unknown', () => {
    const { service } = serviceWith();
    const prepared = sync(service.prepare('nobody', null, service.follow('nobody')));
    expect(prepared.seq).toBe(0);
    expect(parse(prepared.frames[0]!)).toMatchObject({ seq: 0, data: { status: 'unknown', telemetry: null } });
  });

  it('resumes within the epoch with exactly the frames after since_seq', () => {
    const { service, device, readings } = serviceWith();
    const state = device('d1');
    void service.follow('d1');
    readings(state, 5);
    const prepared = sync(service.prepare('d1', { sinceSeq: 2, epoch: service.epoch }, Promise.resolve()));
    expect(prepared.recovered).toBe(true);
    expect(seqs(prepared)).toEqual([3, 4, 5]);
    expect(prepared.seq).toBe(5);
  });

  it('answers a resume from another epoch (a restarted hub) with a snapshot, recovered false', () => {
    const { service, device, readings } = serviceWith();
    const state = device('d1');
    void service.follow('d1');
    readings(state, 2);
    const prepared = sync(service.prepare('d1', { sinceSeq: 1, epoch: 'another-epoch' }, Promise.resolve()));
    expect(prepared.recovered).toBe(false);
    expect(prepared.frames.map((f) => parse(f).type)).toEqual(['snapshot']);
  });

  it('answers a resume from before the kept history (frames nobody followed were never built) with a snapshot', () => {
    const { service, device, readings } = serviceWith();
    const state = device('d1');
    readings(state, 3); // nobody follows: no frames, no history
    void service.follow('d1');
    readings(state, 2);
    const prepared = sync(service.prepare('d1', { sinceSeq: 1, epoch: service.epoch }, Promise.resolve()));
    expect(prepared.recovered).toBe(false);
    expect(seqs(prepared)).toEqual([5]);
  });

  it('delivers live frames only while followed', async () => {
    const { service, device, readings, delivered } = serviceWith();
    const state = device('d1');
    await service.follow('d1');
    readings(state, 1);
    service.unfollow('d1');
    readings(state, 1);
    expect(delivered.map((d) => d.frame.seq)).toEqual([1]);
  });

  it('gives a new `*` follower the fleet head at once, and the fleet frames after a resume point', () => {
    const { service, fanout } = serviceWith();
    void service.follow(ALL_CHANNEL);
    for (let i = 0; i < 3; i++) fanout.toAll(JSON.stringify({ type: 'status_change', device_id: `d${i}` }), `s:d${i}`);
    const head = service.prepareFleet(null, Promise.resolve());
    expect(head).toEqual({ fleetSeq: 3, frames: [] });
    const resumed = service.prepareFleet(1, Promise.resolve());
    if (resumed instanceof Promise) throw new Error('expected an answer at once');
    expect(resumed.frames?.map((f) => (JSON.parse(f) as { fleet_seq: number }).fleet_seq)).toEqual([2, 3]);
  });

  describe('when frames come from other instances (a Redis fan-out)', () => {
    const asRedis = (local: Fanout): Fanout => ({ ...local, kind: 'redis' });

    it("waits for the follow, then gives the owner's snapshot and takes its seq", async () => {
      const owners = JSON.stringify({ type: 'snapshot', device_id: 'd1', seq: 42, data: {} });
      const { service, asked } = serviceWith({ fanout: asRedis, ownerSnapshot: async () => ({ ok: true, value: owners }) });
      let followDone!: () => void;
      const followed = new Promise<void>((resolve) => (followDone = resolve));
      const prepared = service.prepare('d1', null, followed);
      expect(prepared).toBeInstanceOf(Promise);
      await Promise.resolve();
      expect(asked).toEqual([]); // not before frames of every instance reach this one
      followDone();
      expect(await prepared).toEqual({ recovered: null, frames: [owners], seq: 42 });
      expect(asked).toEqual(['d1']);
    });

    it("falls back on this instance's own snapshot when the owner does not answer", async () => {
      const { service, device, readings } = serviceWith({ fanout: asRedis });
      const state = device('d1');
      readings(state, 2);
      const first = await service.prepare('d1', { sinceSeq: 0, epoch: 'gone' }, Promise.resolve());
      expect(first.recovered).toBe(false);
      expect(first.seq).toBe(2);
      expect(parse(first.frames[0]!).type).toBe('snapshot');
    });

    it('resumes from the kept frames without asking the owner', async () => {
      const { service, device, readings, asked } = serviceWith({ fanout: asRedis });
      const state = device('d1');
      void service.follow('d1');
      readings(state, 4);
      const first = await service.prepare('d1', { sinceSeq: 2, epoch: service.epoch }, Promise.resolve());
      expect(first.recovered).toBe(true);
      expect(seqs(first)).toEqual([3, 4]);
      expect(asked).toEqual([]);
    });
  });
});
