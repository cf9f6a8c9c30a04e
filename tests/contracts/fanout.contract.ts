import { afterEach, describe, expect, it } from 'vitest';
import { fleetSeqOf, seqOf, type Fanout } from '../../src/fanout/fanout.js';
import type { HistorySettings } from '../../src/fanout/local-fanout.js';

/**
 * The resume windows every fan-out keeps (in process memory, or in Redis for a cluster), on an
 * explicit clock: frames of the last HISTORY_WINDOW_S per followed device, at most
 * HISTORY_MAX_BYTES_PER_DEVICE of them; the `*` feed numbered by fleet_seq and kept by
 * FLEET_HISTORY_WINDOW_S / FLEET_HISTORY_MAX_BYTES. `make` builds a fresh fan-out (fresh keys).
 */
export interface FanoutUnderTest {
  readonly fanout: Fanout;
  readonly delivered: { readonly device: string[]; readonly all: string[] };
  readonly dropped: Map<string, number>;
}

export function runFanoutContract(name: string, make: (settings: HistorySettings) => Promise<Fanout>): void {
  describe(`fan-out contract: ${name}`, () => {
    const clock = { t: 1_000_000 };
    const open: Fanout[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((f) => f.stop()));
    });
    const start = async (overrides: Partial<HistorySettings> = {}): Promise<FanoutUnderTest> => {
      const dropped = new Map<string, number>();
      const fanout = await make({
        windowMs: 120_000,
        maxBytesPerDevice: 65_536,
        ttlMs: 300_000,
        fleetWindowMs: 120_000,
        fleetMaxBytes: 8 << 20,
        now: () => clock.t,
        dropped: (scope, reason, n) => dropped.set(`${scope}:${reason}`, (dropped.get(`${scope}:${reason}`) ?? 0) + n),
        ...overrides,
      });
      open.push(fanout);
      const delivered = { device: [] as string[], all: [] as string[] };
      await fanout.start({ toDevice: (_d, frame) => void delivered.device.push(frame), toAll: (frame) => void delivered.all.push(frame) });
      return { fanout, delivered, dropped };
    };
    // Frames are timed when stored: in Redis at the end of the event-loop turn that numbered them.
    const settle = async (fanout: Fanout) => {
      await fanout.settled();
    };
    // A telemetry message's frames as the hub builds them: an update and a health score (padded to a real frame's size).
    const pad = 'x'.repeat(250);
    const frame = (type: string, device: string, seq: number) => `{"type":"${type}","device_id":"${device}","seq":${seq},"pad":"${pad}"}`;

    it('keeps a time window, not a count: 10 s of 1 Hz telemetry (and its health scores) resume whole', async () => {
      const { fanout } = await start();
      await fanout.follow('d1');
      let seq = 0;
      const sentAt = new Map<number, number>();
      for (let s = 0; s <= 10; s++) {
        clock.t += 1000;
        for (const type of ['device_update', 'health_score', 'health_score']) {
          fanout.toDevice('d1', ++seq, frame(type, 'd1', seq), type === 'device_update' ? 'u' : 'h');
          sentAt.set(seq, clock.t);
        }
        await settle(fanout); // a second apart: written (and timed, in Redis) before the clock moves on
      }
      await settle(fanout);
      // A tab that reloaded after seeing seq 2 (10 s ago, 31 frames since: more than the old 32-frame count allowed for).
      const recovery = await fanout.recover('d1', 2, seq);
      expect(recovery.recovered).toBe(true);
      if (recovery.recovered) expect(recovery.frames.map(seqOf)).toEqual(Array.from({ length: seq - 2 }, (_, i) => i + 3));
      // 121 s after the first frames they have left the 120 s window; later ones are still there.
      clock.t = sentAt.get(1)! + 120_001;
      expect((await fanout.recover('d1', 0, seq)).recovered).toBe(false);
      expect((await fanout.recover('d1', 3, seq)).recovered).toBe(true);
      clock.t = sentAt.get(seq)! + 120_001;
      expect((await fanout.recover('d1', seq - 1, seq)).recovered).toBe(false);
      expect((await fanout.recover('d1', seq, seq)).recovered).toBe(true); // nothing missed: nothing needed
    });

    it('caps the bytes kept per device, dropping the oldest first, and counts the drops', async () => {
      const { fanout, dropped } = await start({ maxBytesPerDevice: 4096 });
      await fanout.follow('d2');
      for (let seq = 1; seq <= 40; seq++) {
        clock.t += 10;
        fanout.toDevice('d2', seq, frame('device_update', 'd2', seq), 'u');
      }
      await settle(fanout);
      // ~290-byte frames under a 4 KiB cap: the last dozen or so are kept, never more than the cap.
      const kept = [];
      for (let since = 39; since >= 0; since--) {
        const r = await fanout.recover('d2', since, 40);
        if (!r.recovered) break;
        kept.push(since);
      }
      expect(kept.length).toBeGreaterThanOrEqual(10);
      expect(kept.length * (frame('device_update', 'd2', 40).length + 16)).toBeLessThanOrEqual(4096 + 400);
      expect((await fanout.recover('d2', 1, 40)).recovered).toBe(false);
      expect(dropped.get('device:bytes')).toBe(40 - kept.length);
    });

    it('numbers the * feed by fleet_seq, one per frame, and resumes it from the fleet window', async () => {
      const { fanout, delivered, dropped } = await start({ fleetWindowMs: 5000 });
      await fanout.follow('*');
      const head = (await fanout.recoverFleet(null)).fleetSeq;
      for (let i = 1; i <= 30; i++) {
        clock.t += 250;
        fanout.toAll(frame(i % 3 === 0 ? 'status_change' : 'health_score', `d${i % 4}`, i), `h:d${i % 4}`);
        await settle(fanout);
      }
      await settle(fanout);
      expect(delivered.all.map(fleetSeqOf)).toEqual(Array.from({ length: 30 }, (_, i) => head + i + 1));
      for (const f of delivered.all) expect(() => JSON.parse(f)).not.toThrow();
      expect(JSON.parse(delivered.all[0]!)).toMatchObject({ type: 'health_score', fleet_seq: head + 1, seq: 1 });
      // A dashboard that saw fleet_seq head + 20 (2.5 s ago) gets the 10 after it, the very frames sent live.
      const resumed = await fanout.recoverFleet(head + 20);
      expect(resumed.fleetSeq).toBe(head + 30);
      expect(resumed.frames).toEqual(delivered.all.slice(20));
      expect((await fanout.recoverFleet(head + 30)).frames).toEqual([]);
      expect((await fanout.recoverFleet(head + 31)).frames).toBeNull(); // ahead of the feed: not this numbering
      // Frames older than the 5 s fleet window are gone.
      expect((await fanout.recoverFleet(head)).frames).toBeNull();
      clock.t += 1;
      fanout.toAll(frame('status_change', 'd9', 31), 's:d9');
      await settle(fanout);
      expect(dropped.get('fleet:window')).toBeGreaterThan(0);
      expect((await fanout.recoverFleet(head + 20)).frames?.length).toBe(11);
    });

    it('caps the bytes of the fleet window', async () => {
      const { fanout, dropped } = await start({ fleetMaxBytes: 64 * 1024 });
      await fanout.follow('*');
      const head = (await fanout.recoverFleet(null)).fleetSeq;
      for (let i = 1; i <= 400; i++) fanout.toAll(frame('health_score', `d${i}`, 1), `h:d${i}`);
      await settle(fanout);
      expect((await fanout.recoverFleet(head + 1)).frames).toBeNull();
      expect((await fanout.recoverFleet(head + 390)).frames).toHaveLength(10);
      expect(dropped.get('fleet:bytes')).toBeGreaterThan(150);
    });

    it('keeps a history after its last follower left (HISTORY_TTL_S), so a reconnecting client resumes', async () => {
      const { fanout } = await start();
      await fanout.follow('d3');
      await fanout.follow('*');
      const head = (await fanout.recoverFleet(null)).fleetSeq;
      fanout.toDevice('d3', 1, frame('device_update', 'd3', 1), 'u');
      fanout.toAll(frame('status_change', 'd3', 2), 's:d3');
      await settle(fanout);
      fanout.unfollow('d3');
      fanout.unfollow('*');
      fanout.toDevice('d3', 2, frame('status_change', 'd3', 2), 's');
      fanout.toAll(frame('status_change', 'd3', 2), 's:d3');
      await settle(fanout);
      await fanout.follow('d3');
      await fanout.follow('*');
      const device = await fanout.recover('d3', 1, 2);
      expect(device.recovered && device.frames.map(seqOf)).toEqual([2]);
      expect((await fanout.recoverFleet(head + 1)).frames?.map(fleetSeqOf)).toEqual([head + 2]);
    });
  });
}
