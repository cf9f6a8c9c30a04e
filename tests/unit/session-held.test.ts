import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FleetRecovery } from '../../src/fanout/fanout.js';
import type { Prepared } from '../../src/hub/hub.js';
import { harness, status, update } from './session-fakes.js';

/** First frames that arrive when the test says (another instance, Redis). */
function later<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const snapshot = (deviceId: string, seq: number): Prepared => ({ recovered: null, frames: [JSON.stringify({ type: 'snapshot', device_id: deviceId, seq })], seq });

describe('frames held while first frames are fetched', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  it('holds a device’s live frames, then sends ack, snapshot and the held frames after it: no gap, no duplicate', async () => {
    const { socket, send, hub, lag } = harness();
    const first = later<Prepared>();
    hub.prepareDevice = () => first.promise;
    send({ id: 1, type: 'subscribe_device', device_id: 'a' });
    expect(socket.sent).toEqual([]);
    expect(socket.topics.size).toBe(0);
    for (const seq of [4, 5, 6, 7]) lag.deliver('a', 'u', update('a', seq));
    first.resolve(snapshot('a', 5));
    await vi.waitFor(() => expect(socket.sent.length).toBeGreaterThan(0));
    expect(socket.take().map((f) => [f.type, f.seq])).toEqual([
      ['ack', undefined],
      ['snapshot', 5],
      ['device_update', 6],
      ['device_update', 7],
    ]);
    // Live from the topics now; the lag router hands it nothing more (no frame twice).
    expect(socket.topics).toEqual(new Set(['a', 'a~']));
    lag.deliver('a', 'u', update('a', 8));
    expect(socket.sent).toEqual([]);
  });

  it('answers a subscription ended while its frames were fetched, sends nothing of it and holds nothing', async () => {
    const { session, socket, send, hub, lag } = harness();
    const first = later<Prepared>();
    hub.prepareDevice = () => first.promise;
    send({ id: 1, type: 'subscribe_device', device_id: 'a' });
    lag.deliver('a', 'u', update('a', 6));
    send({ id: 2, type: 'unsubscribe_device', device_id: 'a' });
    expect(socket.take()).toEqual([{ type: 'ack', id: 2 }]);
    first.resolve(snapshot('a', 5));
    await vi.waitFor(() => expect(socket.sent.length).toBe(1));
    expect(socket.take()).toEqual([{ type: 'ack', id: 1 }]);
    expect(socket.topics.size).toBe(0);
    expect(hub.follows.size).toBe(0);
    expect(session.preparing?.size ?? 0).toBe(0);
  });

  it('answers a fetch that failed with `unavailable`; the device stays followed, live from then on', async () => {
    const { session, socket, send, hub, lag } = harness();
    const first = later<Prepared>();
    hub.prepareDevice = () => first.promise;
    send({ id: 1, type: 'subscribe_device', device_id: 'a' });
    lag.deliver('a', 'u', update('a', 6));
    first.reject(new Error('redis away'));
    await vi.waitFor(() => expect(socket.sent.length).toBe(1));
    expect(socket.take()).toMatchObject([{ type: 'error', id: 1, error: { code: 'unavailable' } }]);
    expect(session.devices.has('a')).toBe(true);
    expect(socket.topics).toEqual(new Set(['a', 'a~']));
    lag.deliver('a', 'u', update('a', 7));
    expect(socket.sent).toEqual([]);
  });

  it('acks a second subscribe while the first frames are on their way without fetching them twice', async () => {
    const { socket, send, hub } = harness();
    const first = later<Prepared>();
    let fetched = 0;
    hub.prepareDevice = () => (fetched++, first.promise);
    send({ id: 1, type: 'subscribe_device', device_id: 'a' });
    send({ id: 2, type: 'subscribe_device', device_id: 'a' });
    expect(socket.take()).toEqual([{ type: 'ack', id: 2 }]);
    expect(fetched).toBe(1);
    first.resolve(snapshot('a', 5));
    await vi.waitFor(() => expect(socket.sent.length).toBe(2));
    expect(socket.take().map((f) => f.type)).toEqual(['ack', 'snapshot']);
  });

  it('holds every listed device until all first frames are here, then one ack and each device in list order', async () => {
    const { socket, send, hub, lag } = harness();
    const b = later<Prepared>();
    hub.prepareDevice = (deviceId) => (deviceId === 'b' ? b.promise : snapshot(deviceId, 5));
    send({ id: 1, type: 'subscribe_devices', device_ids: ['a', 'b'] });
    expect(socket.sent).toEqual([]);
    lag.deliver('a', 'u', update('a', 6));
    lag.deliver('b', 'u', update('b', 3));
    lag.deliver('b', 'u', update('b', 4));
    b.resolve(snapshot('b', 3));
    await vi.waitFor(() => expect(socket.sent.length).toBeGreaterThan(0));
    expect(socket.take().map((f) => [f.type, f.device_id, f.seq])).toEqual([
      ['ack', undefined, undefined],
      ['snapshot', 'a', 5],
      ['device_update', 'a', 6],
      ['snapshot', 'b', 3],
      ['device_update', 'b', 4],
    ]);
    expect(socket.topics).toEqual(new Set(['a', 'a~', 'b', 'b~']));
  });

  it('holds `*` frames while the fleet head is fetched and drops those that came on a followed device’s topic', async () => {
    const { socket, send, hub, lag } = harness();
    send({ type: 'subscribe_device', device_id: 'a' });
    socket.take();
    const head = later<FleetRecovery>();
    hub.prepareAll = () => head.promise;
    send({ id: 1, type: 'subscribe_all' });
    lag.deliver('*', 's', status('x', 1, 10, 'online'));
    lag.deliver('*', 's', status('x', 2, 11, 'offline'));
    lag.deliver('*', 's', status('a', 6, 12, 'offline'));
    head.resolve({ fleetSeq: 10, frames: null });
    await vi.waitFor(() => expect(socket.sent.length).toBeGreaterThan(0));
    expect(socket.take().map((f) => [f.type, f.device_id, f.fleet_seq])).toEqual([
      ['ack', undefined, 10],
      ['status_change', 'x', 11],
    ]);
    expect(socket.topics).toEqual(new Set(['a', '*']));
  });

  it('keeps a device whose frames arrive while the client lags on the lag router, its snapshot first', async () => {
    const { session, socket, send, hub, lag } = harness();
    const first = later<Prepared>();
    hub.prepareDevice = () => first.promise;
    send({ id: 1, type: 'subscribe_device', device_id: 'a' });
    socket.buffered = 5000;
    session.enterLag(Date.now());
    lag.deliver('a', 'u', update('a', 6));
    first.resolve(snapshot('a', 5));
    await vi.waitFor(() => expect(socket.sent.length).toBeGreaterThan(0));
    expect(socket.take().map((f) => [f.type, f.seq])).toEqual([
      ['ack', undefined],
      ['snapshot', 5],
      ['device_update', 6],
    ]);
    expect(socket.topics.size).toBe(0);
    lag.deliver('a', 'u', update('a', 7));
    socket.buffered = 0;
    session.catchUp(Date.now());
    expect(socket.take().map((f) => f.seq)).toEqual([7]);
    expect(socket.topics).toEqual(new Set(['a', 'a~']));
  });
});
