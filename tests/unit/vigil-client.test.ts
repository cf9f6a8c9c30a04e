import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createVigilClient, TERMINAL_CLOSE_CODES, VigilError, type VigilFrame, type VigilStatus, type VigilStatusDetail, type WebSocketConstructor, type WebSocketLike } from '../../public/vigil-client.js';

/** A WebSocket that records what the client sends and lets the test play the hub. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  readonly sent: Record<string, unknown>[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  closedWith: number | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(code = 1000): void {
    this.closedWith = code;
  }
  // The hub's side:
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  frame(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  last(type: string): Record<string, unknown> {
    const found = this.sent.filter((m) => m.type === type).at(-1);
    if (found === undefined) throw new Error(`nothing of type ${type} sent; sent: ${JSON.stringify(this.sent)}`);
    return found;
  }
  ack(type: string, extra: Record<string, unknown> = {}): void {
    this.frame({ type: 'ack', id: this.last(type).id, ...extra });
  }
}

const Socket = FakeSocket as unknown as WebSocketConstructor;
const socket = (i: number): FakeSocket => FakeSocket.all[i]!;
/** Lets the client's promise chains (auth → subscribe) run. */
const settle = () => vi.advanceTimersByTimeAsync(0);

/** Whether a promise has settled yet (read after the microtasks ran). */
const states = new WeakMap<Promise<unknown>, 'pending' | 'settled'>();
const pendingState = (p: Promise<unknown>): 'pending' | 'settled' => states.get(p) ?? 'pending';
const track = <T>(p: Promise<T>): Promise<T> => {
  states.set(p, 'pending');
  p.then(() => states.set(p, 'settled'), () => states.set(p, 'settled'));
  return p;
};

const update = (deviceId: string, seq: number) => ({ type: 'device_update', device_id: deviceId, seq, data: { battery_level: seq } });

describe('vigil-client', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('authenticates first, then subscribes; status goes connecting → open', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', token: 'vgl_key', WebSocket: Socket });
    const statuses: VigilStatus[] = [];
    client.onStatus((s) => statuses.push(s));
    const frames: VigilFrame[] = [];
    client.subscribeDevice('d1', (f) => frames.push(f));
    expect(client.status).toBe('connecting');
    socket(0).open();
    await settle();
    expect(socket(0).sent).toEqual([{ type: 'auth', token: 'vgl_key', id: 1 }]);
    socket(0).ack('auth');
    await settle();
    expect(socket(0).last('subscribe_device')).toEqual({ type: 'subscribe_device', device_id: 'd1', id: 2 });
    expect(statuses).toEqual(['open']);
    socket(0).ack('subscribe_device');
    socket(0).frame({ type: 'snapshot', device_id: 'd1', seq: 4, epoch: 'e1', data: {} });
    socket(0).frame(update('d1', 5));
    expect(frames.map((f) => f.type)).toEqual(['snapshot', 'device_update']);
    client.close();
    expect(client.status).toBe('closed');
  });

  it('reconnects with backoff and resumes each device from its seq and epoch; drops duplicates', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket, reconnect: { minMs: 100, maxMs: 1000 } });
    const frames: VigilFrame[] = [];
    client.subscribeDevice('d1', (f) => frames.push(f));
    socket(0).open();
    await settle();
    socket(0).ack('subscribe_device');
    socket(0).frame({ type: 'snapshot', device_id: 'd1', seq: 10, epoch: 'e1', data: {} });
    socket(0).frame(update('d1', 11));
    socket(0).drop();
    expect(client.status).toBe('reconnecting');
    // First retry within [minMs/2, minMs].
    await vi.advanceTimersByTimeAsync(49);
    expect(FakeSocket.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(51);
    expect(FakeSocket.all).toHaveLength(2);
    socket(1).open();
    await settle();
    expect(socket(1).last('subscribe_device')).toMatchObject({ device_id: 'd1', since_seq: 11, epoch: 'e1' });
    socket(1).ack('subscribe_device', { recovered: true });
    // The missed frames, overlapping what was already handed over: 11 is dropped.
    socket(1).frame(update('d1', 11));
    socket(1).frame(update('d1', 12));
    socket(1).frame(update('d1', 12));
    socket(1).frame(update('d1', 13));
    expect(frames.filter((f) => f.type === 'device_update').map((f) => f.seq)).toEqual([11, 12, 13]);
    client.close();
  });

  it('hands over the fresh snapshot when the hub cannot resume (recovered: false, new epoch)', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket, reconnect: { minMs: 10, maxMs: 10 } });
    const frames: VigilFrame[] = [];
    client.subscribeDevice('d1', (f) => frames.push(f));
    socket(0).open();
    await settle();
    socket(0).frame({ type: 'snapshot', device_id: 'd1', seq: 50, epoch: 'old', data: {} });
    socket(0).drop();
    await vi.advanceTimersByTimeAsync(10);
    socket(1).open();
    await settle();
    socket(1).ack('subscribe_device', { recovered: false });
    socket(1).frame({ type: 'snapshot', device_id: 'd1', seq: 3, epoch: 'new', data: {} });
    socket(1).frame(update('d1', 4)); // lower than before, but a new epoch: delivered
    expect(frames.map((f) => [f.type, f.seq])).toEqual([['snapshot', 50], ['snapshot', 3], ['device_update', 4]]);
    client.close();
  });

  it('backs off exponentially up to maxMs, and a fresh token is fetched for each connection', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(1); // the top of each jitter window
    let tokens = 0;
    const client = createVigilClient({ url: 'ws://hub/ws', token: async () => `t${++tokens}`, WebSocket: Socket, reconnect: { minMs: 100, maxMs: 400 } });
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      socket(i).drop();
      const before = FakeSocket.all.length;
      let waited = 0;
      while (FakeSocket.all.length === before) {
        await vi.advanceTimersByTimeAsync(10);
        waited += 10;
      }
      delays.push(waited);
    }
    expect(delays).toEqual([100, 200, 400, 400]);
    socket(4).open();
    await settle();
    expect(socket(4).last('auth')).toMatchObject({ token: 't1' });
    socket(4).ack('auth');
    await settle();
    expect(client.status).toBe('open');
    socket(4).drop(); // a connection that was open starts the backoff again
    await vi.advanceTimersByTimeAsync(100);
    socket(5).open();
    await settle();
    expect(socket(5).last('auth')).toMatchObject({ token: 't2' });
    client.close();
  });

  it('acks alerts with promises: resolved by the ack, rejected by the error frame or a timeout', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket, requestTimeoutMs: 1000 });
    socket(0).open();
    await settle();
    const alertId = '00000000-0000-0000-0000-000000000001';
    const ok = client.ackAlert(alertId);
    expect(socket(0).last('ack_alert')).toMatchObject({ alert_id: alertId });
    socket(0).ack('ack_alert');
    await expect(ok).resolves.toBeUndefined();
    const refused = client.ackAlert(alertId);
    socket(0).frame({ type: 'error', id: socket(0).last('ack_alert').id, error: { code: 'alert_not_found', message: 'no active alert' } });
    await expect(refused).rejects.toEqual(new VigilError('alert_not_found', 'no active alert'));
    const silent = client.ackAlert(alertId);
    const expectation = expect(silent).rejects.toMatchObject({ code: 'timeout' });
    await vi.advanceTimersByTimeAsync(1000);
    await expectation;
    client.close();
  });

  it('a request made before the connection is open waits for it (after auth and the subscriptions), within requestTimeoutMs', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', token: 'vgl_key', WebSocket: Socket, requestTimeoutMs: 1000, reconnect: { minMs: 10, maxMs: 10 } });
    client.subscribeDevice('d1', () => undefined);
    const alertId = '00000000-0000-0000-0000-000000000001';
    // The documented embedding example's last line: an ack right after createVigilClient.
    const early = client.ackAlert(alertId);
    let settled = false;
    void early.then(() => (settled = true), () => (settled = true));
    await vi.advanceTimersByTimeAsync(300);
    socket(0).open();
    await settle();
    expect(socket(0).sent.map((m) => m.type)).toEqual(['auth']); // nothing before the key
    socket(0).ack('auth');
    await settle();
    expect(socket(0).sent.map((m) => m.type)).toEqual(['auth', 'subscribe_device', 'ack_alert']);
    expect(socket(0).last('ack_alert')).toMatchObject({ alert_id: alertId });
    expect(settled).toBe(false);
    socket(0).ack('ack_alert');
    await expect(early).resolves.toBeUndefined();

    // While it reconnects: sent on the next connection.
    socket(0).drop(1006);
    const during = client.ackAlert(alertId);
    await vi.advanceTimersByTimeAsync(10);
    socket(1).open();
    await settle();
    socket(1).ack('auth');
    await settle();
    socket(1).ack('ack_alert');
    await expect(during).resolves.toBeUndefined();

    // Bounded: the wait and the answer together take at most requestTimeoutMs.
    socket(1).drop(1006);
    const late = track(client.ackAlert(alertId));
    const timedOut = expect(late).rejects.toMatchObject({ code: 'timeout' });
    await vi.advanceTimersByTimeAsync(10);
    socket(2).open();
    await vi.advanceTimersByTimeAsync(600);
    socket(2).ack('auth');
    await settle();
    expect(socket(2).last('ack_alert')).toMatchObject({ alert_id: alertId });
    await vi.advanceTimersByTimeAsync(389);
    expect(pendingState(late)).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    await timedOut;

    // Never connected: a timeout; close() rejects what waits with `closed`.
    socket(2).drop(1006);
    const never = client.ackAlert(alertId);
    const neverExpectation = expect(never).rejects.toMatchObject({ code: 'timeout' });
    await vi.advanceTimersByTimeAsync(1000); // sockets 3.. never open
    await neverExpectation;
    const closing = client.ackAlert(alertId);
    client.close();
    await expect(closing).rejects.toMatchObject({ code: 'closed' });
  });

  it('reports error frames nobody asked for (rate_limited) and subscription errors', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket });
    const errors: string[] = [];
    client.onError((e) => errors.push(e.code));
    client.subscribeDevice('d1', () => undefined);
    socket(0).open();
    await settle();
    socket(0).frame({ type: 'error', id: socket(0).last('subscribe_device').id, error: { code: 'forbidden', message: 'no' } });
    await settle();
    socket(0).frame({ type: 'error', id: null, error: { code: 'rate_limited', message: 'slow down' } });
    socket(0).onmessage?.({ data: 'not json' }); // ignored
    await settle();
    expect(errors).toEqual(['forbidden', 'rate_limited']);
    client.close();
  });

  it('follows the fleet with summaries and resumes by fleet_seq only when the hub offered it', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket, reconnect: { minMs: 10, maxMs: 10 } });
    const fleet: VigilFrame[] = [];
    client.subscribeFleet({ summaries: true }, (f) => fleet.push(f));
    socket(0).open();
    await settle();
    // Today's hub: no fleet_seq in the ack, so no resume is asked for after a reconnect.
    expect(socket(0).last('subscribe_all')).toEqual({ type: 'subscribe_all', summaries: true, id: 1 });
    socket(0).ack('subscribe_all');
    socket(0).frame({ type: 'fleet_summary', full: true, last: true, devices: [], removed: [] });
    socket(0).drop();
    await vi.advanceTimersByTimeAsync(10);
    socket(1).open();
    await settle();
    expect(socket(1).last('subscribe_all')).toEqual({ type: 'subscribe_all', summaries: true, id: 2 });
    // A resumable hub: its ack carries epoch and fleet_seq; frames carry fleet_seq.
    socket(1).ack('subscribe_all', { epoch: 'e1', fleet_seq: 100 });
    socket(1).frame({ type: 'status_change', device_id: 'd2', seq: 3, fleet_seq: 101, status: 'online' });
    socket(1).frame({ type: 'status_change', device_id: 'd2', seq: 3, fleet_seq: 101, status: 'online' }); // duplicate
    socket(1).drop();
    await vi.advanceTimersByTimeAsync(10);
    socket(2).open();
    await settle();
    expect(socket(2).last('subscribe_all')).toMatchObject({ summaries: true, since_fleet_seq: 101, epoch: 'e1' });
    socket(2).ack('subscribe_all', { epoch: 'e1', fleet_seq: 105, recovered: true });
    socket(2).frame({ type: 'health_score', device_id: 'd3', seq: 9, fleet_seq: 102, score: 90 });
    const kinds = fleet.map((f) => (f.type === 'ack' ? `ack:${String(f.recovered)}` : `${f.type}:${String(f.fleet_seq ?? '')}`));
    expect(kinds).toEqual(['ack:undefined', 'fleet_summary:', 'ack:undefined', 'status_change:101', 'ack:true', 'health_score:102']);
    client.close();
  });

  it('unsubscribes when the last handler of a channel goes', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket });
    socket(0).open();
    await settle();
    const a = client.subscribeDevice('d1', () => undefined);
    const b = client.subscribeDevice('d1', () => undefined);
    expect(socket(0).sent.filter((m) => m.type === 'subscribe_device')).toHaveLength(1);
    a();
    expect(socket(0).sent.some((m) => m.type === 'unsubscribe_device')).toBe(false);
    b();
    expect(socket(0).last('unsubscribe_device')).toMatchObject({ device_id: 'd1' });
    const off = client.subscribeFleet({}, () => undefined);
    off();
    expect(socket(0).last('unsubscribe_all')).toBeDefined();
    client.close();
    expect(socket(0).closedWith).toBe(1000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1); // closed for good: no reconnect
  });

  it('renews a ws-token on the open connection every renewMs, without reconnecting', async () => {
    let tokens = 0;
    const client = createVigilClient({ url: 'ws://hub/ws', token: async () => `t${++tokens}`, renewMs: 30_000, WebSocket: Socket });
    socket(0).open();
    await settle();
    socket(0).ack('auth');
    await settle();
    expect(client.status).toBe('open');
    await vi.advanceTimersByTimeAsync(30_000);
    expect(socket(0).last('auth')).toMatchObject({ token: 't2' });
    socket(0).ack('auth');
    await vi.advanceTimersByTimeAsync(30_000);
    expect(socket(0).last('auth')).toMatchObject({ token: 't3' });
    expect(FakeSocket.all).toHaveLength(1);
    client.close();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(socket(0).sent.filter((m) => m.type === 'auth')).toHaveLength(3); // stopped with the client
  });

  it('resubscribes many devices in subscribe_devices requests of 500 with their resume points, one request each when refused', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket, reconnect: { minMs: 10, maxMs: 10 } });
    const ids = Array.from({ length: 1200 }, (_, i) => `d${i}`);
    const frames: VigilFrame[] = [];
    for (const id of ids) client.subscribeDevice(id, (f) => frames.push(f));
    socket(0).open();
    await settle();
    // Followed before the socket was ready: three requests, not 1,200 (past the hub's rate limit).
    const batches = socket(0).sent.filter((m) => m.type === 'subscribe_devices');
    expect(socket(0).sent).toHaveLength(3);
    expect(batches.map((m) => (m.device_ids as string[]).length)).toEqual([500, 500, 200]);
    expect(batches.every((m) => m.resume === undefined)).toBe(true);
    for (const m of batches) socket(0).frame({ type: 'ack', id: m.id });
    socket(0).frame({ type: 'snapshot', device_id: 'd7', seq: 5, epoch: 'e1', data: {} });
    socket(0).frame({ type: 'snapshot', device_id: 'd1100', seq: 9, epoch: 'e1', data: {} });
    socket(0).frame(update('d7', 6));
    socket(0).drop();
    await vi.advanceTimersByTimeAsync(10);
    socket(1).open();
    await settle();
    const again = socket(1).sent.filter((m) => m.type === 'subscribe_devices');
    expect(again.map((m) => m.resume ?? null)).toEqual([{ d7: { since_seq: 6, epoch: 'e1' } }, null, { d1100: { since_seq: 9, epoch: 'e1' } }]);
    socket(1).frame({ type: 'ack', id: again[0]!.id, recovered: { d7: true } });
    socket(1).frame(update('d7', 6)); // overlap: dropped
    socket(1).frame(update('d7', 7));
    expect(frames.filter((f) => f.device_id === 'd7').map((f) => `${f.type}:${String(f.seq)}`)).toEqual(['snapshot:5', 'device_update:6', 'device_update:7']);
    // All or nothing: one id the key may not read refuses the batch; then one request each.
    socket(1).frame({ type: 'error', id: again[1]!.id, error: { code: 'forbidden', message: 'not d600' } });
    await settle();
    const singles = socket(1).sent.filter((m) => m.type === 'subscribe_device');
    expect(singles).toHaveLength(500);
    expect(singles[0]).toMatchObject({ device_id: 'd500' });
    client.close();
  });

  it('keeps each subscribe_devices under the hub frame limit (16 KiB) with long ids and resume points', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket, reconnect: { minMs: 10, maxMs: 10 } });
    const ids = Array.from({ length: 500 }, (_, i) => `${String(i).padStart(3, '0')}${'x'.repeat(125)}`); // 128 characters
    for (const id of ids) client.subscribeDevice(id, () => undefined);
    socket(0).open();
    await settle();
    for (const id of ids) socket(0).frame({ type: 'snapshot', device_id: id, seq: 123456, epoch: 'EOnwkNWr', data: {} });
    socket(0).drop();
    await vi.advanceTimersByTimeAsync(10);
    socket(1).open();
    await settle();
    const batches = socket(1).sent.filter((m) => m.type === 'subscribe_devices');
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.flatMap((m) => m.device_ids as string[])).toEqual(ids);
    for (const m of batches) expect(JSON.stringify(m).length).toBeLessThan(16 * 1024);
    client.close();
  });

  it('falls back to subscribe_device for a hub without subscribe_devices', async () => {
    const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket });
    const errors: string[] = [];
    client.onError((e) => errors.push(e.code));
    client.subscribeDevice('a', () => undefined);
    client.subscribeDevice('b', () => undefined);
    socket(0).open();
    await settle();
    socket(0).frame({ type: 'error', id: socket(0).last('subscribe_devices').id, error: { code: 'unknown_type', message: 'unknown type' } });
    await settle();
    expect(socket(0).sent.filter((m) => m.type === 'subscribe_device').map((m) => m.device_id)).toEqual(['a', 'b']);
    expect(errors).toEqual([]);
    client.close();
  });

  describe('credentials and close codes', () => {
    /** A POST /ws-token answer lasting ttlS from now (fake time). */
    const grant = (n: number, ttlS: number) => ({ token: `t${n}`, expires_at: new Date(Date.now() + ttlS * 1000).toISOString() });

    it.each([
      [4401, 'invalid token'],
      [4410, 'key revoked'],
      [4403, 'forbidden'],
      [4009, 'too many refused subscriptions'],
    ])('stops for good on %i with status closed carrying the code and reason', async (code, reason) => {
      const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket, reconnect: { minMs: 10, maxMs: 10 } });
      const seen: [VigilStatus, VigilStatusDetail | null][] = [];
      client.onStatus((status, detail) => seen.push([status, detail]));
      client.subscribeDevice('d1', () => undefined);
      socket(0).open();
      await settle();
      const ack = client.ackAlert('00000000-0000-0000-0000-000000000001');
      const rejected = expect(ack).rejects.toMatchObject({ code: 'disconnected' });
      socket(0).drop(code, reason);
      await rejected;
      expect(seen.at(-1)).toEqual(['closed', { code, reason }]);
      expect(client.status).toBe('closed');
      expect(client.statusDetail).toEqual({ code, reason });
      await vi.advanceTimersByTimeAsync(60_000);
      expect(FakeSocket.all).toHaveLength(1); // no reconnect
      await expect(client.ackAlert('00000000-0000-0000-0000-000000000001')).rejects.toMatchObject({ code: 'closed' });
    });

    it.each([1001, 1006, 1011, 1009, 4008, 4029, 4440])('reconnects after %i, telling the code and the wait', async (code) => {
      expect(TERMINAL_CLOSE_CODES.has(code)).toBe(false);
      vi.spyOn(Math, 'random').mockReturnValue(1);
      const client = createVigilClient({ url: 'ws://hub/ws', WebSocket: Socket, reconnect: { minMs: 200, maxMs: 200 } });
      const seen: [VigilStatus, VigilStatusDetail | null][] = [];
      client.onStatus((status, detail) => seen.push([status, detail]));
      socket(0).open();
      await settle();
      socket(0).drop(code, 'bye');
      expect(seen.at(-1)).toEqual(['reconnecting', { code, reason: 'bye', retryInMs: 200 }]);
      await vi.advanceTimersByTimeAsync(200);
      expect(FakeSocket.all).toHaveLength(2);
      socket(1).drop(); // a failed attempt is told again, with its own wait
      expect(seen.at(-1)).toEqual(['reconnecting', { code: 1006, reason: '', retryInMs: 200 }]);
      expect(seen.filter(([s]) => s === 'reconnecting')).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(200);
      socket(2).open();
      await settle();
      expect(seen.at(-1)).toEqual(['open', null]);
      client.close();
      expect(seen.at(-1)).toEqual(['closed', { code: 1000, reason: 'client closed' }]);
      expect(socket(2).closedWith).toBe(1000);
    });

    it('renews a POST /ws-token grant at half its remaining lifetime on the open connection', async () => {
      let n = 0;
      const client = createVigilClient({ url: 'ws://hub/ws', token: async () => grant(++n, 60), WebSocket: Socket });
      socket(0).open();
      await settle();
      expect(socket(0).last('auth')).toMatchObject({ token: 't1' });
      socket(0).ack('auth');
      await settle();
      await vi.advanceTimersByTimeAsync(29_000);
      expect(socket(0).sent.filter((m) => m.type === 'auth')).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1000);
      expect(socket(0).last('auth')).toMatchObject({ token: 't2' });
      socket(0).ack('auth');
      await settle();
      // The next renewal follows the fresh token's expiry, 30 s after it came.
      await vi.advanceTimersByTimeAsync(30_000);
      expect(socket(0).last('auth')).toMatchObject({ token: 't3' });
      expect(FakeSocket.all).toHaveLength(1);
      expect(client.status).toBe('open');
      client.close();
    });

    it('retries a renewal the token endpoint did not answer, then reconnects with a fresh token after 4440', async () => {
      vi.spyOn(Math, 'random').mockReturnValue(1);
      let n = 0;
      let down = false;
      const client = createVigilClient({
        url: 'ws://hub/ws',
        token: async () => {
          if (down) throw new TypeError('Failed to fetch');
          return grant(++n, 8);
        },
        WebSocket: Socket,
        reconnect: { minMs: 100, maxMs: 100 },
      });
      const errors: string[] = [];
      client.onError((e) => errors.push(e.code));
      socket(0).open();
      await settle();
      socket(0).ack('auth');
      await settle();
      down = true;
      await vi.advanceTimersByTimeAsync(4000); // 8 s token: renewal due after 4 s, fails
      expect(errors).toEqual(['token_unavailable']);
      await vi.advanceTimersByTimeAsync(2000); // again at half the 4 s left
      expect(errors).toEqual(['token_unavailable', 'token_unavailable']);
      down = false;
      await vi.advanceTimersByTimeAsync(1000); // and again, 1 s later: renewed
      expect(socket(0).last('auth')).toMatchObject({ token: 't2' });
      socket(0).ack('auth');
      await settle();
      // The hub ends a session whose token expired: a retryable close, a fresh token on the new connection.
      socket(0).drop(4440, 'token expired');
      expect(client.status).toBe('reconnecting');
      await vi.advanceTimersByTimeAsync(100);
      socket(1).open();
      await settle();
      expect(socket(1).last('auth')).toMatchObject({ token: 't3' });
      client.close();
    });

    it('stops with 4401 when the hub refuses the token in auth, or the token function says it is invalid', async () => {
      const refusedByHub = createVigilClient({ url: 'ws://hub/ws', token: 'vgl_wrong', WebSocket: Socket });
      socket(0).open();
      await settle();
      socket(0).frame({ type: 'error', id: socket(0).last('auth').id, error: { code: 'invalid_token', message: 'invalid API key or token' } });
      await settle();
      expect(refusedByHub.status).toBe('closed');
      expect(refusedByHub.statusDetail).toEqual({ code: 4401, reason: 'invalid API key or token' });
      expect(socket(0).closedWith).toBe(1000);

      // The page's token function maps POST /ws-token's 401 to VigilError('invalid_token').
      const refusedByEndpoint = createVigilClient({
        url: 'ws://hub/ws',
        token: async () => {
          throw new VigilError('invalid_token', 'The API key was refused.');
        },
        WebSocket: Socket,
      });
      socket(1).open();
      await settle();
      expect(refusedByEndpoint.statusDetail).toEqual({ code: 4401, reason: 'The API key was refused.' });
      await vi.advanceTimersByTimeAsync(60_000);
      expect(FakeSocket.all).toHaveLength(2);
      expect(socket(1).sent).toEqual([]);
    });

    it('retries with backoff when the token function fails otherwise (the hub is restarting, a malformed answer)', async () => {
      vi.spyOn(Math, 'random').mockReturnValue(1);
      let calls = 0;
      const client = createVigilClient({
        url: 'ws://hub/ws',
        token: async () => {
          if (++calls === 1) throw new TypeError('Failed to fetch');
          if (calls === 2) return { expires_at: 'soon' } as unknown as { token: string };
          return grant(calls, 60);
        },
        WebSocket: Socket,
        reconnect: { minMs: 100, maxMs: 100 },
      });
      const errors: string[] = [];
      client.onError((e) => errors.push(e.code));
      for (const i of [0, 1]) {
        socket(i).open();
        await settle();
        expect(socket(i).sent).toEqual([]);
        expect(socket(i).closedWith).toBe(4000);
        socket(i).drop(4000, 'setup failed');
        expect(client.status).toBe('reconnecting');
        await vi.advanceTimersByTimeAsync(100);
      }
      expect(errors).toEqual(['token_unavailable', 'token_unavailable']);
      socket(2).open();
      await settle();
      expect(socket(2).last('auth')).toMatchObject({ token: 't3' });
      client.close();
    });

    it('sends no auth when the token function answers null (a hub that needs no key)', async () => {
      const client = createVigilClient({ url: 'ws://hub/ws', token: async () => null, WebSocket: Socket });
      client.subscribeFleet({ summaries: true }, () => undefined);
      socket(0).open();
      await settle();
      expect(socket(0).sent.map((m) => m.type)).toEqual(['subscribe_all']);
      expect(client.status).toBe('open');
      await vi.advanceTimersByTimeAsync(120_000);
      expect(socket(0).sent.map((m) => m.type)).toEqual(['subscribe_all']); // nothing to renew
      client.close();
    });

    it('tokenInUrl: the token goes on the upgrade (?token=), is renewed by auth, and a failed fetch is retried before any socket', async () => {
      vi.spyOn(Math, 'random').mockReturnValue(1);
      let n = 0;
      let answer: 'ok' | 'down' | 'refused' = 'down';
      const client = createVigilClient({
        url: 'ws://hub/ws?x=1',
        tokenInUrl: true,
        token: async () => {
          if (answer === 'down') throw new TypeError('Failed to fetch');
          if (answer === 'refused') throw new VigilError('invalid_token', 'The API key was refused.');
          return grant(++n, 10);
        },
        WebSocket: Socket,
        reconnect: { minMs: 100, maxMs: 100 },
      });
      const seen: [VigilStatus, VigilStatusDetail | null][] = [];
      client.onStatus((status, detail) => seen.push([status, detail]));
      client.subscribeDevice('d1', () => undefined);
      await settle();
      expect(FakeSocket.all).toHaveLength(0); // no socket without a token
      expect(seen.at(-1)).toEqual(['reconnecting', { code: 4000, reason: 'Failed to fetch', retryInMs: 100 }]);
      answer = 'ok';
      await vi.advanceTimersByTimeAsync(100);
      expect(socket(0).url).toBe('ws://hub/ws?x=1&token=t1');
      socket(0).open();
      await settle();
      expect(socket(0).sent.map((m) => m.type)).toEqual(['subscribe_device']); // no auth request
      expect(client.status).toBe('open');
      await vi.advanceTimersByTimeAsync(5000); // renewed on the open connection at half of its 10 s
      expect(socket(0).last('auth')).toMatchObject({ token: 't2' });
      socket(0).ack('auth');
      socket(0).drop(1001, 'shutting down');
      answer = 'refused';
      await vi.advanceTimersByTimeAsync(100);
      expect(client.statusDetail).toEqual({ code: 4401, reason: 'The API key was refused.' });
      expect(client.status).toBe('closed');
      await vi.advanceTimersByTimeAsync(60_000);
      expect(FakeSocket.all).toHaveLength(1);
    });
  });
});
