import { describe, expect, it } from 'vitest';
import { MemoryHistory } from '../../src/fanout/memory-history.js';
import { SlicedPass } from '../../src/jobs/in-slices.js';

/** Lets every setImmediate queued so far (and those they queue) run. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('a periodic pass over a large collection runs in slices (#21: no whole-fleet look in one event-loop turn)', () => {
  it('does `size` items within the call and the rest on later turns, never overlapping, a pass asked for meanwhile once after it', async () => {
    const items = new Set(Array.from({ length: 2500 }, (_, i) => i));
    const seen: number[] = [];
    let passes = 0;
    const pass = new SlicedPass(
      () => {
        passes++;
        return items;
      },
      1000,
      (item) => seen.push(item),
      (error) => {
        throw error;
      },
    );
    pass.run();
    expect(seen.length).toBe(1000); // the first slice, within the caller's turn
    expect(pass.inProgress).toBe(true);
    items.delete(1500); // removed before its slice: skipped
    pass.run(); // asked for while running: after it, once
    pass.run();
    await turns(3);
    expect(seen.slice(0, 2499)).toEqual([...Array.from({ length: 1500 }, (_, i) => i), ...Array.from({ length: 999 }, (_, i) => 1501 + i)]);
    await turns(5);
    expect(passes).toBe(2);
    expect(seen.length).toBe(2499 * 2);
    expect(pass.inProgress).toBe(false);
  });

  it('a later slice that throws is reported, ends that pass, and the next pass starts afresh', async () => {
    const items = Array.from({ length: 30 }, (_, i) => i);
    const faults: unknown[] = [];
    let failAt: number | null = 15;
    const seen: number[] = [];
    const pass = new SlicedPass(
      () => items,
      10,
      (item) => {
        if (item === failAt) throw new Error(`bad ${item}`);
        seen.push(item);
      },
      (error) => faults.push(error),
    );
    pass.run();
    await turns(4);
    expect(faults).toEqual([new Error('bad 15')]);
    expect(seen).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(pass.inProgress).toBe(false);
    failAt = null;
    pass.run();
    await turns(4);
    expect(seen.length).toBe(15 + 30);
  });
});

describe('memory history sweep in slices', () => {
  it('sweeps 5,000 channels over several turns, keeps its byte count without walking the channels, drops expired ones', async () => {
    const history = new MemoryHistory({ windowMs: 10_000, maxBytes: 1 << 20, ttlMs: 1000 });
    for (let c = 0; c < 5000; c++) {
      history.follow(`d${c}`, 0);
      history.record(`d${c}`, 1, 'old-frame', 0); // 9 bytes, out of the window by 15 s
      history.record(`d${c}`, 2, 'new', 9000); // 3 bytes
      if (c % 2 === 0) history.unfollow(`d${c}`, 0); // kept until 1 s
    }
    expect(history.bytes).toBe(5000 * 12);
    history.sweep(15_000);
    expect(history.devices).toBeGreaterThan(2500); // not all in the first turn
    await turns(10);
    expect(history.devices).toBe(2500);
    expect(history.bytes).toBe(2500 * 3);
    expect(history.recover('d1', 1, 2, 15_000)).toEqual({ recovered: true, seq: 2, frames: ['new'] });
  });
});
