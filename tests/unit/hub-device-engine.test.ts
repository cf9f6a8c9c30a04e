import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeviceState } from '../../src/domain/device-state.js';
import type { DeviceStatus, TransitionReason } from '../../src/domain/device-status.js';
import { DeviceEngine } from '../../src/hub/device-engine.js';
import { DeviceRegistry, type DeviceLimits } from '../../src/hub/device-registry.js';
import { FramePublisher } from '../../src/hub/frame-publisher.js';
import { HELD_MS, OfflineTimeouts } from '../../src/hub/offline-timeouts.js';
import type { DeviceObserver } from '../../src/hub/outlets.js';
import { quietBoundary, recordingLocalFanout, recordingSink, telemetry } from '../helpers/hub-parts.js';

/** The device engine with a recording presence tracker: what each kind of message does to a device. */

const T0 = Date.UTC(2026, 0, 1);

function engineWith(limits: DeviceLimits = { maxDevices: 100, newPerS: 1000, burst: 1000 }, owns: (id: string) => boolean = () => true) {
  const registry = new DeviceRegistry(limits, Date.now);
  const heard: { id: string; at: number; reason: TransitionReason }[] = [];
  const changed: { id: string; status: DeviceStatus; reason: TransitionReason; at: number }[] = [];
  const released: string[] = [];
  const presence = {
    heard: (state: DeviceState, at: number, reason: TransitionReason) => {
      heard.push({ id: state.id, at, reason });
      state.lastSeen = at;
      if (state.status !== 'online') registry.setStatus(state, 'online');
    },
    changeStatus: (state: DeviceState, status: DeviceStatus, reason: TransitionReason, at: number) => {
      changed.push({ id: state.id, status, reason, at });
      registry.setStatus(state, status);
    },
    release: (state: DeviceState) => void released.push(state.id),
    retime: (state: DeviceState) => void retimed.push(`${state.id} ${timeouts.of(state)}`),
  };
  const retimed: string[] = [];
  const { fanout, delivered } = recordingLocalFanout();
  const sink = recordingSink();
  const timeouts = new OfflineTimeouts(60_000, new Map([['sensor', 5000]]), null);
  const touched: string[] = [];
  const removed: string[] = [];
  const scored: string[] = [];
  const forgotten: string[] = [];
  const insightsForgotten: { id: string; clearAlerts: boolean }[] = [];
  const observer = { forgotten: (id: string) => void forgotten.push(id) } as unknown as DeviceObserver;
  const engine = new DeviceEngine({
    registry,
    presence,
    publisher: new FramePublisher(fanout, sink, quietBoundary().metrics),
    timeouts,
    insights: { onTelemetry: (state) => void scored.push(state.id), forget: (state, _now, clearAlerts) => void insightsForgotten.push({ id: state.id, clearAlerts }) },
    summaries: { touch: (id) => void touched.push(id), removedDevice: (id) => void removed.push(id) },
    outlets: { observer },
    owns,
  });
  return { engine, registry, timeouts, fanout, delivered, sink, heard, changed, released, retimed, touched, removed, scored, forgotten, insightsForgotten };
}

describe('DeviceEngine', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('takes a reading: heard at its receipt time, one frame to its followers, stored, its fleet row marked, scored', async () => {
    const { engine, fanout, delivered, sink, heard, touched, scored, registry } = engineWith();
    await fanout.follow('d1');
    expect(engine.ingestTelemetry(telemetry('d1', T0 - 500, T0))).toBe(true);
    expect(heard).toEqual([{ id: 'd1', at: T0, reason: 'telemetry' }]);
    expect(delivered.map((d) => [d.channel, d.frame.type, d.frame.seq])).toEqual([['d1', 'device_update', 1]]);
    expect(sink.rows.map((r) => r.kind)).toEqual(['telemetry']);
    expect(touched).toEqual(['d1']);
    expect(scored).toEqual(['d1']);
    expect(registry.get('d1')?.status).toBe('online');
  });

  it('refuses a new device past MAX_DEVICES: false from every entry, nothing registered, stored or pushed', () => {
    const { engine, registry, sink, heard, changed } = engineWith({ maxDevices: 1, newPerS: 1000, burst: 1000 });
    expect(engine.ingestTelemetry(telemetry('d1', T0))).toBe(true);
    expect(engine.ingestTelemetry(telemetry('d2', T0))).toBe(false);
    expect(engine.heartbeat('d3', T0)).toBe(false);
    expect(engine.deviceSaid('d4', false, T0)).toBe(false);
    expect(engine.ingestTelemetry(telemetry('d1', T0 + 1))).toBe(true); // a known device is still taken
    expect(registry.size).toBe(1);
    expect(registry.refused.device_limit).toBe(3);
    expect(sink.rows).toHaveLength(2);
    expect(heard.map((h) => h.id)).toEqual(['d1', 'd1']);
    expect(changed).toEqual([]);
  });

  it('refuses new devices faster than the new-device rate, and admits one again once the bucket refills', () => {
    const { engine, registry } = engineWith({ maxDevices: 100, newPerS: 1, burst: 2 });
    expect([1, 2, 3].map((i) => engine.heartbeat(`d${i}`, T0))).toEqual([true, true, false]);
    expect(registry.refused.new_device_rate).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(engine.heartbeat('d3', Date.now())).toBe(true);
  });

  it('keeps the newest telemetry by device time: a late older reading is stored and pushed, not kept as current', async () => {
    const { engine, registry, fanout, delivered, sink } = engineWith();
    await fanout.follow('d1');
    engine.ingestTelemetry(telemetry('d1', T0, T0, 50));
    engine.ingestTelemetry(telemetry('d1', T0 - 10_000, T0 + 10, 90));
    expect(registry.get('d1')?.telemetry?.batteryLevel).toBe(50);
    engine.ingestTelemetry(telemetry('d1', T0 + 1000, T0 + 1000, 40));
    expect(registry.get('d1')?.telemetry?.batteryLevel).toBe(40);
    expect(delivered.map((d) => d.frame.seq)).toEqual([1, 2, 3]);
    expect(sink.rows).toHaveLength(3);
  });

  it('while the broker hands over its backlog, a queued reading counts as heard at its own time (never later than receipt)', () => {
    const { engine, heard } = engineWith();
    engine.readingBacklog = true;
    engine.ingestTelemetry(telemetry('d1', T0 - 30_000, T0));
    engine.ingestTelemetry(telemetry('d2', T0 + 5000, T0)); // a device clock ahead: receipt time
    engine.readingBacklog = false;
    engine.ingestTelemetry(telemetry('d3', T0 - 30_000, T0));
    expect(heard.map((h) => [h.id, h.at])).toEqual([
      ['d1', T0 - 30_000],
      ['d2', T0],
      ['d3', T0],
    ]);
  });

  it("applies a device's own status word: online is a heartbeat, offline a Last Will (once)", () => {
    const { engine, heard, changed } = engineWith();
    expect(engine.deviceSaid('d1', true, T0)).toBe(true);
    expect(engine.deviceSaid('d1', false, T0 + 1)).toBe(true);
    expect(engine.deviceSaid('d1', false, T0 + 2)).toBe(true); // already offline: nothing more
    expect(heard).toEqual([{ id: 'd1', at: T0, reason: 'heartbeat' }]);
    expect(changed).toEqual([{ id: 'd1', status: 'offline', reason: 'last_will', at: T0 + 1 }]);
  });

  it("takes a retained `online` (the broker's copy, sent at every subscription) as a sign of life only for a device of unknown status", () => {
    const { engine, registry, heard, changed } = engineWith();
    expect(engine.deviceSaid('new', true, T0, true)).toBe(true); // nothing known: the best word there is
    engine.heartbeat('live', T0);
    engine.deviceSaid('live', true, T0 + 5000, true);
    engine.heartbeat('gone', T0);
    engine.deviceSaid('gone', false, T0 + 1);
    engine.deviceSaid('gone', true, T0 + 60_000, true); // timed out / said offline: a stale online changes nothing
    expect(heard.map((h) => [h.id, h.at])).toEqual([['new', T0], ['live', T0], ['gone', T0]]);
    expect(registry.get('live')?.lastSeen).toBe(T0);
    expect(registry.get('gone')?.status).toBe('offline');
    // A retained offline is still the device's last word.
    engine.deviceSaid('live', false, T0 + 6000, true);
    expect(changed.map((c) => [c.id, c.status])).toEqual([['gone', 'offline'], ['live', 'offline']]);
  });

  it('holds a device online while its availability input says online: no timeout, a retained online restores it', () => {
    const { engine, registry, timeouts, heard, changed, retimed } = engineWith();
    engine.availabilityHold('z1', true);
    engine.deviceSaid('z1', true, T0);
    expect(timeouts.of(registry.get('z1')!)).toBe(HELD_MS);
    expect(timeouts.describe(registry.get('z1')!).source).toBe('held');
    expect(heard).toEqual([{ id: 'z1', at: T0, reason: 'heartbeat' }]);
    // After a restart (offline in the registry, say), the retained online of a held device counts: its source says online.
    registry.setStatus(registry.get('z1')!, 'offline');
    engine.deviceSaid('z1', true, T0 + 10_000, true);
    expect(changed).toEqual([{ id: 'z1', status: 'online', reason: 'heartbeat', at: T0 + 10_000 }]);
    expect(registry.get('z1')?.lastSeen).toBe(T0); // not heard from: its last seen stays
    expect(retimed).toEqual([`z1 ${HELD_MS}`]);
    // Its `offline` ends the hold: the device goes offline and its timeout is its own again.
    engine.availabilityHold('z1', false);
    engine.deviceSaid('z1', false, T0 + 20_000);
    expect(registry.get('z1')?.status).toBe('offline');
    expect(timeouts.describe(registry.get('z1')!)).toEqual({ ms: 60_000, source: 'default' });
    expect(retimed).toEqual([`z1 ${HELD_MS}`, 'z1 60000']);
    // A hold for a device not (yet) known here is kept for when it is.
    engine.availabilityHold('elsewhere', true);
    engine.heartbeat('elsewhere', T0);
    expect(timeouts.of(registry.get('elsewhere')!)).toBe(HELD_MS);
  });

  it('forgets a device: presence released, its insights given back, gone from the registry and the fleet table, the MQTT observer told', () => {
    const { engine, registry, released, removed, forgotten, insightsForgotten } = engineWith();
    engine.heartbeat('d1', T0);
    engine.forget('d1');
    engine.forget('never-seen');
    expect(registry.get('d1')).toBeUndefined();
    expect(released).toEqual(['d1']);
    expect(removed).toEqual(['d1']);
    expect(insightsForgotten).toEqual([{ id: 'd1', clearAlerts: true }]);
    expect(forgotten).toEqual(['d1', 'never-seen']);
  });

  it('tells the MQTT observer only about devices this instance owns, and only the owner clears their alerts', () => {
    const { engine, forgotten, insightsForgotten } = engineWith(undefined, (id) => id === 'mine');
    engine.heartbeat('mine', T0);
    engine.heartbeat('theirs', T0);
    engine.forget('mine');
    engine.forget('theirs');
    expect(forgotten).toEqual(['mine']);
    expect(insightsForgotten).toEqual([{ id: 'mine', clearAlerts: true }, { id: 'theirs', clearAlerts: false }]);
  });

  it("says a known device's timeout and where it comes from", () => {
    const { engine, registry } = engineWith();
    engine.heartbeat('d1', T0);
    expect(engine.timeoutOf('d1')).toEqual({ ms: 60_000, source: 'default' });
    registry.get('d1')!.type = 'sensor';
    expect(engine.timeoutOf('d1')).toEqual({ ms: 5000, source: 'type' });
    registry.get('d1')!.timeoutMs = 1234;
    expect(engine.timeoutOf('d1')).toEqual({ ms: 1234, source: 'device' });
    expect(engine.timeoutOf('unknown')).toBeNull();
  });
});
