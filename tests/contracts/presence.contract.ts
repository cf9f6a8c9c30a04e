import { afterEach, describe, expect, it } from 'vitest';
import type { StatusChange } from '../../src/domain/device-status.js';
import type { PresenceListener, PresenceStore } from '../../src/presence/presence-store.js';
import { eventually, letTimePass } from '../helpers/wait.js';

export interface Expiry {
  readonly deviceId: string;
  readonly lastSeen: number;
  readonly deadline: number;
  /** When the listener heard of it. */
  readonly at: number;
}

/** A listener that records what a store reports. */
export function recorder(): PresenceListener & { expiries: Expiry[]; remote: StatusChange[] } {
  const expiries: Expiry[] = [];
  const remote: StatusChange[] = [];
  return {
    expiries,
    remote,
    onExpired(deviceId, lastSeen, deadline) {
      expiries.push({ deviceId, lastSeen, deadline, at: Date.now() });
    },
    onRemoteTransition(change) {
      remote.push(change);
    },
  };
}

export const waitFor = (check: () => boolean, timeoutMs = 5000): Promise<void> => eventually('the presence condition', check, timeoutMs);

const change = (deviceId: string, status: 'online' | 'offline', reason: StatusChange['reason'] = 'telemetry'): StatusChange => ({
  deviceId,
  status,
  previous: null,
  reason,
  lastSeen: Date.now(),
  at: Date.now(),
});

/** The rules every presence store keeps (see src/presence/presence-store.ts). */
export function runPresenceContract(name: string, build: () => Promise<PresenceStore>): void {
  describe(`presence contract (${name})`, () => {
    const stores: PresenceStore[] = [];
    const open = async () => {
      const store = await build();
      const listener = recorder();
      await store.start(listener);
      stores.push(store);
      return { store, listener };
    };
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.stop()));
    });

    it('reports an expiry once, never early, less than a second late', async () => {
      const { store, listener } = await open();
      const touchedAt = Date.now();
      store.touch('a', touchedAt, 400);
      await waitFor(() => listener.expiries.length > 0);
      await letTimePass(600, 'a second expiry would be reported meanwhile');
      expect(listener.expiries).toHaveLength(1);
      const [expiry] = listener.expiries;
      expect(expiry!.deviceId).toBe('a');
      expect(expiry!.at).toBeGreaterThanOrEqual(touchedAt + 400);
      expect(expiry!.at - (touchedAt + 400)).toBeLessThan(1000);
      expect(expiry!.lastSeen).toBe(touchedAt);
    });

    it('postpones the expiry on every touch, however often (coalescing keeps it exact)', async () => {
      const { store, listener } = await open();
      let last = 0;
      for (let i = 0; i < 20; i++) {
        last = Date.now();
        store.touch('b', last, 500);
        await letTimePass(50, 'a touch every 50 ms, for a second: longer than the timeout');
      }
      expect(listener.expiries).toHaveLength(0);
      await waitFor(() => listener.expiries.length > 0, 3000);
      expect(listener.expiries[0]!.at).toBeGreaterThanOrEqual(last + 500);
      expect(listener.expiries[0]!.at - (last + 500)).toBeLessThan(1000);
    });

    it('forgets a device claimed offline (Last Will) without reporting an expiry', async () => {
      const { store, listener } = await open();
      store.touch('c', Date.now(), 300);
      await eventually('the touch stored', async () => (await store.lastSeen(['c']))[0] !== null);
      expect(await store.claim(change('c', 'offline', 'last_will'))).toBe(true);
      await letTimePass(900, 'past the 300 ms timeout: an expiry would be reported by now');
      expect(listener.expiries).toHaveLength(0);
      expect(await store.lastSeen(['c'])).toEqual([null]);
    });

    it('expires 2000 devices with mixed timeouts exactly once each, none early', async () => {
      const { store, listener } = await open();
      const start = Date.now();
      const deadlines = new Map<string, number>();
      for (let i = 0; i < 2000; i++) {
        const timeout = 300 + (i % 7) * 100;
        store.touch(`m${i}`, start, timeout);
        deadlines.set(`m${i}`, start + timeout);
      }
      await waitFor(() => listener.expiries.length >= 2000, 5000);
      await letTimePass(300, 'a repeated expiry would be reported meanwhile');
      expect(listener.expiries).toHaveLength(2000);
      expect(new Set(listener.expiries.map((e) => e.deviceId)).size).toBe(2000);
      for (const e of listener.expiries) {
        expect(e.at).toBeGreaterThanOrEqual(deadlines.get(e.deviceId)!);
        expect(e.at - deadlines.get(e.deviceId)!).toBeLessThan(1000);
      }
    });

    it('answers lastSeen for present and absent devices', async () => {
      const { store } = await open();
      const at = Date.now();
      store.touch('p1', at, 10_000);
      store.touch('p2', at - 5, 10_000);
      // A batching store writes a little later: poll until it answers.
      await eventually('both touches stored', async () => {
        expect(await store.lastSeen(['p1', 'nobody', 'p2'])).toEqual([at, null, at - 5]);
        return true;
      });
    });

    it('grants a claim to online and then to offline', async () => {
      const { store } = await open();
      expect(await store.claim(change('t1', 'online'))).toBe(true);
      expect(await store.claim(change('t1', 'offline', 'last_will'))).toBe(true);
    });

    it('reports healthy while its backend is reachable', async () => {
      const { store } = await open();
      expect(store.health().ok).toBe(true);
    });
  });
}
