import { describe, expect, it, vi } from 'vitest';
import { Faults } from '../../src/errors/boundary.js';
import { DeviceRegistry } from '../../src/hub/device-registry.js';
import { FleetSummaries, SUMMARY_TOPIC, summaryEntry, summaryEntryReference, type SummaryPeers, type SummarySocket } from '../../src/hub/fleet-summary.js';
import type { RowInsights } from '../../src/hub/fleet-summary-rows.js';
import { createOwnerApi } from '../../src/cluster/owner-api/index.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { blankState } from '../../src/domain/device-state.js';

/** FleetSummaries alone: chunking, throttling, removal, and the rows of other owners (versions). */
interface Row {
  id: string;
  battery_level: number | null;
}
interface SummaryFrame {
  type: string;
  full: boolean;
  last: boolean;
  devices: Row[];
  removed: string[];
}

/** Health and alerts are not what this file tests: none of either. */
const noInsights: RowInsights = { score: () => null, activeAlertCount: () => 0 };

function instance(owns: (id: string) => boolean = () => true) {
  const metrics = createMetrics();
  const registry = new DeviceRegistry({ maxDevices: 1000, newPerS: 1e6, burst: 1e6 }, Date.now);
  const summaries = new FleetSummaries({
    registry,
    insights: noInsights,
    owns,
    owner: createOwnerApi(undefined, metrics),
    metrics,
    faults: new Faults(createLogger('silent'), metrics),
    now: Date.now,
  });
  const published: SummaryFrame[] = [];
  summaries.publish = (frame) => published.push(JSON.parse(frame) as SummaryFrame);
  const reading = (id: string, battery: number) => {
    const state = registry.admit(id);
    if (typeof state === 'string') throw new Error(state);
    state.telemetry = { deviceId: id, ts: Date.now(), receivedAt: Date.now(), batteryLevel: battery, rssi: null, responseTimeMs: null, errorRate: null, metrics: null } as never;
    summaries.touch(id);
  };
  return { summaries, registry, published, reading, metrics };
}

function socket(): SummarySocket & { frames: SummaryFrame[]; topics: Set<string>; buffered: number } {
  const frames: SummaryFrame[] = [];
  const topics = new Set<string>();
  const sock = {
    frames,
    topics,
    buffered: 0,
    bufferedAmount: () => sock.buffered,
    send: (frame: string) => void frames.push(JSON.parse(frame) as SummaryFrame),
    subscribe: (topic: string) => void topics.add(topic),
    unsubscribe: (topic: string) => void topics.delete(topic),
    cork: (fn: () => void) => fn(),
  };
  return sock;
}

describe('FleetSummaries', () => {
  it('sends the full fleet in chunks, then per interval one row per changed device, chunked, with removals last', () => {
    const hub = instance();
    hub.summaries.start({ intervalMs: 60_000, chunk: 10, paceBytes: 1e9 }, null);
    for (let i = 0; i < 25; i++) hub.reading(`d${i}`, i);
    const client = socket();
    hub.summaries.join(client, false);
    expect(client.frames.map((f) => [f.full, f.last, f.devices.length])).toEqual([[true, false, 10], [true, false, 10], [true, true, 5]]);
    expect(client.topics.has(SUMMARY_TOPIC)).toBe(true);

    hub.summaries.flush();
    expect(hub.published).toEqual([]); // nothing changed since the snapshot (the readings came before anyone subscribed: unmarked)
    for (let n = 0; n < 100; n++) hub.reading('d3', n); // a burst from one device
    hub.reading('d4', 7);
    hub.registry.delete('d9');
    hub.summaries.removedDevice('d9');
    hub.summaries.flush();
    expect(hub.published).toHaveLength(1);
    expect(hub.published[0]).toMatchObject({ full: false, last: true, removed: ['d9'] });
    expect(hub.published[0]!.devices.map((r) => [r.id, r.battery_level])).toEqual([['d3', 99], ['d4', 7]]);

    hub.published.length = 0;
    for (let i = 0; i < 23; i++) if (i !== 9) hub.reading(`d${i}`, 100 + i);
    hub.summaries.flush();
    expect(hub.published.map((f) => [f.full, f.last, f.devices.length])).toEqual([[false, false, 10], [false, false, 10], [false, true, 2]]);
    hub.summaries.stop();
  });

  it('keeps no marks while nobody subscribes (single instance), and starts again from a full snapshot', () => {
    const hub = instance();
    hub.summaries.start({ intervalMs: 60_000, chunk: 1000, paceBytes: 1e9 }, null);
    hub.reading('d1', 1);
    hub.summaries.flush();
    expect(hub.published).toEqual([]);
    const client = socket();
    hub.summaries.join(client, false);
    hub.reading('d1', 2);
    hub.summaries.leave(client);
    hub.reading('d1', 3); // not marked: nobody reads it
    const again = socket();
    hub.summaries.join(again, false);
    expect(again.frames[0]!.devices).toEqual([expect.objectContaining({ id: 'd1', battery_level: 3 })]);
    hub.summaries.stop();
  });

  it('a cluster instance keeps the newest row of each device another owns, by that owner\'s tick', () => {
    const inbox = new Map<string, (m: string) => void>();
    const peers = (instanceId: string): SummaryPeers => ({
      instanceId,
      publish: (message) => {
        for (const [id, handler] of inbox) if (id !== instanceId) handler(message);
      },
      onMessage: (handler) => void inbox.set(instanceId, handler),
    });
    const a = instance((id) => id.startsWith('a'));
    const b = instance((id) => id.startsWith('b'));
    a.summaries.start({ intervalMs: 60_000, chunk: 1000, paceBytes: 1e9 }, peers('A'));
    b.summaries.start({ intervalMs: 60_000, chunk: 1000, paceBytes: 1e9 }, peers('B'));
    const client = socket();
    a.summaries.join(client, false);
    b.reading('b1', 10);
    a.registry.admit('b1'); // A knows the device (status is shared) but not its readings
    a.summaries.touch('b1'); // e.g. a status change seen on A: B, the owner, sends the row
    b.summaries.flush(); // tick 1 of B
    a.summaries.flush();
    expect(a.published.flatMap((f) => f.devices)).toEqual([expect.objectContaining({ id: 'b1', battery_level: 10 })]);
    // An older batch of B (tick 0) arriving late does not replace the row of tick 1.
    inbox.get('A')!(`B|0|${JSON.stringify([{ id: 'b1', status: 'online', battery_level: 1 }])}`);
    // Malformed batches and rows are refused and counted.
    inbox.get('A')!('B|x|not json');
    inbox.get('A')!(`B|5|${JSON.stringify([{ id: 'bad id', status: 'online' }, { id: 'b2', status: 'lost' }])}`);
    const late = socket();
    a.summaries.join(late, false);
    expect(late.frames[0]!.devices.find((r) => r.id === 'b1')).toMatchObject({ battery_level: 10 });
    expect(late.frames[0]!.devices.some((r) => r.id === 'b2')).toBe(false);
    b.reading('b1', 20);
    b.summaries.flush();
    const joiner = socket();
    a.summaries.join(joiner, false); // the cached full snapshot was dropped when B's row came
    expect(joiner.frames[0]!.devices.find((r) => r.id === 'b1')).toMatchObject({ battery_level: 20 });
    a.summaries.stop();
    b.summaries.stop();
  });

  it('writes each row exactly as JSON.stringify of the row would', () => {
    const withAll: RowInsights = { score: () => 95.6, activeAlertCount: () => 2 };
    const states = [blankState('d1'), { ...blankState('d.2:x-y_z'), status: 'online' as const, lastSeen: 1_700_000_000_123, type: 'sensor', name: 'Pump "7" \\ \u2028 é', flapping: true, telemetry: { batteryLevel: 87, rssi: -61.5 } as never }];
    for (const state of states) {
      for (const insights of [noInsights, withAll]) expect(summaryEntry(state, insights)).toBe(summaryEntryReference(state, insights));
    }
  });

  it('paces a full snapshot by the send buffer, holding the deltas of the meantime until it is sent', async () => {
    vi.useFakeTimers();
    try {
      const hub = instance();
      hub.summaries.start({ intervalMs: 60_000, chunk: 10, paceBytes: 1000 }, null);
      for (let i = 0; i < 30; i++) hub.reading(`d${i}`, i);
      const other = socket();
      hub.summaries.join(other, false); // an idle buffer: the whole snapshot at once
      const slow = socket();
      slow.buffered = 5000; // full: nothing more now
      hub.summaries.join(slow, false);
      expect(slow.frames).toEqual([]);
      expect(slow.topics.size).toBe(0);
      hub.reading('d1', 77);
      hub.summaries.flush(); // published to the topic; held for the slow receiver
      slow.buffered = 0;
      await vi.advanceTimersByTimeAsync(20);
      expect(slow.frames.map((f) => [f.full, f.last])).toEqual([[true, false], [true, false], [true, true], [false, true]]);
      expect(slow.frames[3]!.devices).toEqual([expect.objectContaining({ id: 'd1', battery_level: 77 })]);
      expect(slow.topics.has(SUMMARY_TOPIC)).toBe(true);
      // A receiver that goes while its snapshot is still being sent is never written to again.
      const gone = socket();
      gone.buffered = 5000;
      hub.summaries.join(gone, false);
      hub.summaries.leave(gone, false);
      let writes = 0;
      gone.send = () => void writes++;
      gone.buffered = 0;
      await vi.advanceTimersByTimeAsync(100);
      expect(writes).toBe(0);
      hub.summaries.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
