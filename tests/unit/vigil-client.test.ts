import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createVigilClient, VigilError, type VigilFrame, type VigilStatus, type WebSocketConstructor, type WebSocketLike } from '../../public/vigil-client.js';

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
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
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

const update = (deviceId: string, seq: number) => ({ type: 'device_update', device_id: deviceId, seq, data: { battery_level: seq } });

describe('vigil-client', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
  });
  afterEach(() => vi.useRealTimers());

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
    await expect(client.ackAlert('a')).rejects.toMatchObject({ code: 'disconnected' });
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
});
