import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeviceRegistry } from '../../src/hub/device-registry.js';
import { SortedIds } from '../../src/hub/sorted-ids.js';

describe('SortedIds', () => {
  it('keeps ids sorted through adds and deletes, and pages after any id like a sorted array', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.stringMatching(/^[A-Za-z0-9._:-]{1,6}$/)), { maxLength: 6000 }),
        fc.stringMatching(/^[A-Za-z0-9._:-]{0,6}$/),
        fc.nat(7000),
        (ops, after, offset) => {
          const ids = new SortedIds();
          const model = new Set<string>();
          for (const [add, id] of ops) {
            if (add && !model.has(id)) {
              ids.add(id);
              model.add(id);
            } else if (!add) expect(ids.delete(id)).toBe(model.delete(id));
          }
          const sorted = [...model].sort();
          expect(ids.size).toBe(model.size);
          expect([...ids.after('')]).toEqual(sorted);
          expect([...ids.after(after)]).toEqual(sorted.filter((id) => id > after));
          expect([...ids.fromOffset(offset)]).toEqual(sorted.slice(offset));
        },
      ),
      { numRuns: 60 },
    );
  });
});

it('SortedIds splits and merges its chunks correctly at fleet sizes', () => {
  const ids = new SortedIds();
  const model = new Set<string>();
  const all = Array.from({ length: 20_000 }, (_, i) => `d${(i * 7919) % 20_000}`);
  for (const id of all) {
    ids.add(id);
    model.add(id);
  }
  for (const id of all.filter((_, i) => i % 3 !== 0)) {
    ids.delete(id);
    model.delete(id);
  }
  const sorted = [...model].sort();
  expect([...ids.after('')]).toEqual(sorted);
  expect([...ids.after(sorted[1000]!)]).toEqual(sorted.slice(1001));
  expect([...ids.fromOffset(5000)]).toEqual(sorted.slice(5000));
});

describe('DeviceRegistry bounds', () => {
  it('refuses new ids past maxDevices, never a known one, and counts each refusal', () => {
    const registry = new DeviceRegistry({ maxDevices: 3, newPerS: 1000, burst: 1000 }, () => 0);
    for (const id of ['a', 'b', 'c']) expect(typeof registry.admit(id)).toBe('object');
    expect(registry.admit('d')).toBe('device_limit');
    expect(registry.adopt('d')).toBe('device_limit');
    expect(typeof registry.admit('a')).toBe('object');
    expect(registry.refused).toEqual({ device_limit: 2, new_device_rate: 0 });
    registry.delete('b');
    expect(typeof registry.admit('d')).toBe('object');
    expect(registry.size).toBe(3);
  });

  it('admits a burst of new ids, then newPerS a second (a token bucket); adopt is not rate-limited', () => {
    let now = 0;
    const registry = new DeviceRegistry({ maxDevices: 1000, newPerS: 10, burst: 5 }, () => now);
    const admitted = (n: number, tag: string) => Array.from({ length: n }, (_, i) => registry.admit(`${tag}${i}`)).filter((s) => typeof s === 'object').length;
    expect(admitted(20, 'burst')).toBe(5);
    expect(registry.refused.new_device_rate).toBe(15);
    now += 500; // half a second: 5 tokens back
    expect(admitted(20, 'later')).toBe(5);
    now += 10_000; // long idle: the bucket holds at most the burst
    expect(admitted(20, 'idle')).toBe(5);
    expect(typeof registry.adopt('restored')).toBe('object');
  });

  it('keeps status totals as devices change and go', () => {
    const registry = new DeviceRegistry({ maxDevices: 10, newPerS: 10, burst: 10 }, () => 0);
    const a = registry.admit('a');
    const b = registry.admit('b');
    registry.admit('c');
    if (typeof a === 'string' || typeof b === 'string') throw new Error('refused');
    registry.setStatus(a, 'online');
    registry.setStatus(b, 'online');
    registry.setStatus(b, 'offline');
    expect(registry.totals()).toEqual({ total: 3, online: 1, offline: 1, unknown: 1 });
    registry.delete('a');
    registry.delete('b');
    expect(registry.totals()).toEqual({ total: 1, online: 0, offline: 0, unknown: 1 });
  });

  it('flags flapping exactly when the last FLAP_TRANSITIONS transitions fall within the window, keeping a ring only while they come close together', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 60 }), (max, gaps) => {
        const registry = new DeviceRegistry({ maxDevices: 10, newPerS: 10, burst: 10 }, () => 0);
        const state = registry.admit('d');
        if (typeof state === 'string') throw new Error(state);
        const windowMs = 1000;
        const times: number[] = [];
        let at = 1_000_000;
        for (const gap of gaps) {
          at += gap;
          times.push(at);
          const expected = times.length >= max && at - times[times.length - max]! <= windowMs;
          expect(registry.recordTransition(state, at, max, windowMs)).toBe(expected);
          expect(state.flapping).toBe(expected);
          if (gap > windowMs) expect(state.transitions).toBeNull();
        }
      }),
    );
  });
});
