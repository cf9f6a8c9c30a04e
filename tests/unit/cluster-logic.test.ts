import { describe, expect, it } from 'vitest';
import { ownerOf } from '../../src/cluster/rendezvous.js';
import { MassOfflineGuard } from '../../src/hub/mass-offline.js';
import { MemoryHistory } from '../../src/fanout/memory-history.js';
import { createLocalFanout } from '../../src/fanout/local-fanout.js';

describe('rendezvous ownership', () => {
  const devices = Array.from({ length: 3000 }, (_, i) => `device-${i}`);
  const members = ['hub-a', 'hub-b', 'hub-c'];

  it('spreads devices evenly and is the same whatever the member order', () => {
    const counts = new Map<string, number>();
    for (const d of devices) {
      const owner = ownerOf(d, members)!;
      expect(ownerOf(d, [...members].reverse())).toBe(owner);
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    for (const m of members) expect(counts.get(m)!).toBeGreaterThan(800);
  });

  it('moves only the leaving member devices', () => {
    for (const d of devices) {
      const before = ownerOf(d, members)!;
      const after = ownerOf(d, ['hub-a', 'hub-c'])!;
      if (before !== 'hub-b') expect(after).toBe(before);
    }
  });
});

describe('mass-offline guard', () => {
  const opts = { minDevices: 5, share: 0.3, windowMs: 10_000 };

  it('raises one incident for a wave, covers its devices and clears when most are back', () => {
    const guard = new MassOfflineGuard(opts);
    let online = 10;
    const verdicts = [];
    for (let i = 0; i < 8; i++) verdicts.push(guard.note(`d${i}`, 'offline', 1000 + i, --online));
    const said = verdicts.filter((v) => v !== null);
    expect(said.map((v) => [v.transition, v.devices])).toEqual([['raised', 5], ['updated', 6], ['updated', 7], ['updated', 8]]);
    expect(new Set(said.map((v) => v.id)).size).toBe(1);
    for (let i = 0; i < 8; i++) expect(guard.covers(`d${i}`)).toBe(true);
    // A device that returns, drops again and returns counts once among those back.
    expect(guard.note('d0', 'online', 4000, ++online)).toBeNull();
    expect(guard.note('d0', 'offline', 4001, --online)).toBeNull();
    const back = [];
    for (let i = 0; i < 8; i++) back.push(guard.note(`d${i}`, 'online', 5000 + i, ++online));
    expect(back.filter((v) => v !== null)).toMatchObject([{ transition: 'cleared', devices: 8, returned: 7 }]);
    expect(guard.covers('d0')).toBe(false);
  });

  it('leaves devices failing one by one alone', () => {
    const guard = new MassOfflineGuard(opts);
    for (let i = 0; i < 20; i++) expect(guard.note(`d${i}`, 'offline', i * 11_000, 100)).toBeNull();
  });

  it('needs the share as well as the count', () => {
    const guard = new MassOfflineGuard(opts);
    for (let i = 0; i < 6; i++) expect(guard.note(`d${i}`, 'offline', 1000 + i, 1000)).toBeNull();
  });
});

describe('memory history', () => {
  it('recovers a contiguous run within the time window and refuses when frames are gone', () => {
    const history = new MemoryHistory({ windowMs: 10_000, maxBytes: 1 << 20, ttlMs: 60_000 });
    history.record('x', 1, 'f1', 0); // not followed: not kept
    history.follow('x', 0);
    for (let seq = 1; seq <= 6; seq++) history.record('x', seq, `f${seq}`, seq * 1000);
    expect(history.recover('x', 3, 6, 6000)).toEqual({ recovered: true, seq: 6, frames: ['f4', 'f5', 'f6'] });
    expect(history.recover('x', 6, 6, 6000)).toEqual({ recovered: true, seq: 6, frames: [] });
    expect(history.recover('x', 7, 6, 6000)).toEqual({ recovered: false });
    // At 12.5 s, f1 and f2 (1 s, 2 s) are older than the 10 s window.
    expect(history.recover('x', 2, 6, 12_500)).toEqual({ recovered: true, seq: 6, frames: ['f3', 'f4', 'f5', 'f6'] });
    expect(history.recover('x', 1, 6, 12_500)).toEqual({ recovered: false });
    history.unfollow('x', 0);
    history.sweep(59_999);
    expect(history.devices).toBe(1);
    history.sweep(60_000);
    expect(history.devices).toBe(0);
  });
});

const HISTORY = { windowMs: 60_000, maxBytesPerDevice: 65_536, ttlMs: 60_000, fleetWindowMs: 60_000, fleetMaxBytes: 1 << 20 };

describe('local fan-out', () => {
  it('wants a device frame only while someone follows it or its history is kept', async () => {
    const fanout = createLocalFanout(HISTORY);
    const delivered: string[] = [];
    await fanout.start({ toDevice: (_id, frame) => delivered.push(frame), toAll: () => undefined });
    expect(fanout.wants('x')).toBe(false);
    expect(fanout.wants('*')).toBe(false);
    await fanout.follow('*');
    expect(fanout.wants('*')).toBe(true);
    fanout.unfollow('*');
    expect(fanout.wants('*')).toBe(true); // the fleet history is kept for a reconnecting dashboard
    fanout.fleetHistory.sweep(Date.now() + 60_001);
    expect(fanout.wants('*')).toBe(false);
    expect(fanout.wants('x')).toBe(false);
    await fanout.follow('x');
    expect(fanout.wants('x')).toBe(true);
    expect(fanout.wants('y')).toBe(false);
    fanout.toDevice('x', 1, 'f1', 'u');
    fanout.unfollow('x');
    // Still kept for a reconnecting client until the history's TTL runs out.
    expect(fanout.wants('x')).toBe(true);
    fanout.history.sweep(Date.now() + 60_001);
    expect(fanout.wants('x')).toBe(false);
    expect(delivered).toEqual(['f1']);
    await fanout.stop();
  });

  it('with no history, wants only followed devices', async () => {
    const fanout = createLocalFanout({ ...HISTORY, windowMs: 0, fleetWindowMs: 0 });
    await fanout.follow('x');
    expect(fanout.wants('x')).toBe(true);
    fanout.unfollow('x');
    expect(fanout.wants('x')).toBe(false);
    await fanout.stop();
  });
});
