import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IngestRouter, type RouterCluster, type RouterOwnership } from '../../src/cluster/ingest-router.js';
import { Faults } from '../../src/errors/boundary.js';
import { DeviceRegistry } from '../../src/hub/device-registry.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';

/**
 * The cluster's decision for each MQTT message, alone, on fake timers: another instance's device
 * is skipped and counted; a device this instance newly owns is held until the previous owner
 * handed off and its stored seq was read back, then replayed in order.
 */

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function setup(opts: { known?: boolean; stored?: () => Promise<(number | null)[]> } = {}) {
  const metrics = createMetrics();
  const faults = new Faults(createLogger('silent'), metrics);
  const registry = new DeviceRegistry({ maxDevices: 100, newPerS: 1000, burst: 1000 }, Date.now);
  const listeners: (() => void)[] = [];
  const membership = {
    version: 1,
    list: ['a', 'b'] as readonly string[],
    ownerOf: (id: string) => (id.startsWith('b-') ? 'b' : 'a'),
    owns: (id: string) => !id.startsWith('b-'),
    onChange: (listener: () => void) => void listeners.push(listener),
  };
  const storedSeqs = vi.fn(async (ids: readonly string[]) => (opts.stored ? opts.stored() : ids.map(() => 7)));
  const cluster: RouterCluster = { instanceId: 'a', membership, storedSeqs };
  let handoff = deferred();
  const ownership: RouterOwnership = { known: opts.known ?? true, handedOff: () => handoff.promise };
  const handled: string[] = [];
  const router = new IngestRouter(cluster, ownership, registry, metrics, (topic, payload, _at, retained) => handled.push(`${topic}:${payload.toString()}${retained ? ' retained' : ''}`), faults);
  /** A message in, as the MQTT ingest hands it: true when the router took it. */
  const message = (deviceId: string, n: number, replayed = false, retained = false) => router.route(deviceId, `devices/${deviceId}/telemetry`, Buffer.from(String(n)), 1000 + n, replayed, retained);
  const count = async (name: 'clusterNotOwned' | 'clusterUnsynced') => (await metrics[name].get()).values[0]?.value ?? 0;
  return {
    router,
    registry,
    membership,
    listeners,
    storedSeqs,
    handled,
    message,
    count,
    handOff: () => handoff.resolve(),
    newHandoff: () => (handoff = deferred()),
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('IngestRouter', () => {
  it('skips another instance’s device and counts it, once a second', async () => {
    const t = setup();
    t.handOff();
    expect(t.message('b-1', 1)).toBe(true);
    expect(t.message('b-1', 2)).toBe(true);
    expect(t.handled).toEqual([]);
    expect(t.registry.get('b-1')).toBeUndefined();
    // Counted in a plain number on the hot path, added to the counter once a second.
    expect(await t.count('clusterNotOwned')).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await t.count('clusterNotOwned')).toBe(2);
    expect(t.message('b-2', 3)).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await t.count('clusterNotOwned')).toBe(3);
    t.router.stop();
  });

  it('skips every message before the first members marker (nobody here knows who owns what)', async () => {
    const t = setup({ known: false });
    expect(t.message('a-1', 1)).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.handled).toEqual([]);
    expect(await t.count('clusterNotOwned')).toBe(1);
    t.router.stop();
  });

  it('holds a newly owned device during the handoff, then replays its messages in order after the stored seq', async () => {
    const t = setup();
    expect(t.message('a-1', 1)).toBe(true);
    expect(t.message('a-1', 2, false, true)).toBe(true); // a retained message stays one when replayed
    await vi.advanceTimersByTimeAsync(500);
    // The previous owner has not handed off: nothing handled, nothing read.
    expect(t.handled).toEqual([]);
    expect(t.storedSeqs).not.toHaveBeenCalled();
    t.handOff();
    await vi.advanceTimersByTimeAsync(0);
    expect(t.storedSeqs).toHaveBeenCalledWith(['a-1']);
    expect(t.handled).toEqual(['devices/a-1/telemetry:1', 'devices/a-1/telemetry:2 retained']);
    const state = t.registry.get('a-1')!;
    expect(state.seq).toBe(7); // numbering continues where the previous owner stopped
    expect(state.syncedVersion).toBe(1);
    // Synced: the next message is handled at once, and a replayed one too.
    expect(t.message('a-1', 3)).toBe(false);
    expect(t.message('a-1', 4, true)).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await t.count('clusterNotOwned')).toBe(0);
    t.router.stop();
  });

  it('with Redis away, replays the held messages unsynced and counts them', async () => {
    const t = setup({ stored: () => Promise.reject(new Error('redis away')) });
    t.handOff();
    expect(t.message('a-1', 1)).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(t.handled).toEqual(['devices/a-1/telemetry:1']);
    expect(t.registry.get('a-1')!.seq).toBe(0);
    expect(await t.count('clusterUnsynced')).toBe(1);
    t.router.stop();
  });

  it('after a membership change, holds an owned device again until the new handoff', async () => {
    const t = setup();
    t.handOff();
    t.message('a-1', 1);
    await vi.advanceTimersByTimeAsync(0);
    expect(t.message('a-1', 2)).toBe(false);
    t.membership.version = 2;
    t.newHandoff();
    for (const listener of t.listeners) listener();
    expect(t.message('a-1', 3)).toBe(true);
    await vi.advanceTimersByTimeAsync(500);
    expect(t.handled).toEqual(['devices/a-1/telemetry:1']);
    t.handOff();
    await vi.advanceTimersByTimeAsync(0);
    expect(t.handled).toEqual(['devices/a-1/telemetry:1', 'devices/a-1/telemetry:3']);
    expect(t.registry.get('a-1')!.syncedVersion).toBe(2);
    t.router.stop();
  });
});
