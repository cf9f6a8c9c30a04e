import { describe, expect, it } from 'vitest';
import { computeUptime } from '../../src/domain/uptime.js';

describe('uptime', () => {
  it('adds up online time inside the window', () => {
    const r = computeUptime({ status: 'online', at: 0 }, [{ status: 'offline', at: 30 }, { status: 'online', at: 60 }], 10, 110);
    expect(r).toEqual({ onlineMs: 70, windowMs: 100, ratio: 0.7, transitions: 2 });
  });

  it('does not count time before the device was first seen', () => {
    const r = computeUptime(null, [{ status: 'online', at: 50 }, { status: 'offline', at: 75 }], 0, 100);
    expect(r.ratio).toBe(0.5);
    expect(r.onlineMs).toBe(25);
  });

  it('knows nothing of a device never seen', () => {
    expect(computeUptime(null, [], 0, 100).ratio).toBeNull();
  });
});
