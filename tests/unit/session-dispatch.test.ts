import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CloseCode } from '../../src/hub/protocol.js';
import { WS_POLICY } from '../../src/hub/session.js';
import { harness, keyCredentials, metricValue, type Frame } from './session-fakes.js';

const ALERT_ID = '123e4567-e89b-42d3-a456-426614174000';
const errorOf = (frame: Frame | undefined) => (frame as { error?: { code: string } } | undefined)?.error?.code;

describe('session dispatch', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  it('answers each undecodable message with its coded error and the request id when one was readable', async () => {
    const { socket, send, metrics } = harness();
    const cases: [unknown, string, unknown][] = [
      ['not json', 'invalid_json', null],
      ['[1,2]', 'invalid_message', null],
      [{ id: 1 }, 'invalid_message', 1],
      [{ id: 2, type: 'dance' }, 'unknown_type', 2],
      [{ id: 3, type: 'subscribe_device', device_id: 'bad id' }, 'invalid_device_id', 3],
      [{ id: 4, type: 'subscribe_device', device_id: 'a', since_seq: 1 }, 'invalid_resume', 4],
      [{ id: 5, type: 'ack_alert', alert_id: 'nope' }, 'invalid_alert_id', 5],
      [{ id: 6, type: 'auth', token: '' }, 'invalid_token', 6],
      [{ id: 7, type: 'subscribe_devices', device_ids: [] }, 'invalid_device_id', 7],
      ['x'.repeat(5000), 'frame_too_large', null],
    ];
    for (const [message, code, id] of cases) {
      send(message);
      const [answer, ...rest] = socket.take();
      expect(rest).toEqual([]);
      expect(answer).toMatchObject({ type: 'error', id, error: { code } });
    }
    expect(await metricValue(metrics, 'vigil_ws_client_errors_total', { code: 'invalid_json' })).toBe(1);
    expect(socket.closed).toBeNull();
  });

  it('refuses binary frames', () => {
    const { session, socket } = harness();
    session.onBinary(Date.now());
    expect(errorOf(socket.take()[0])).toBe('binary_not_supported');
  });

  it('dispatches every message type to its handler', async () => {
    const { socket, send, hub } = harness({ limits: { maxMessagesPerSecond: 100 } });
    send({ id: 1, type: 'ping' });
    expect(socket.take()).toEqual([{ type: 'pong', id: 1 }]);

    send({ id: 2, type: 'subscribe_device', device_id: 'a' });
    expect(socket.take()).toEqual([{ type: 'ack', id: 2 }, { type: 'snapshot', device_id: 'a', seq: 5 }]);
    expect(socket.topics).toEqual(new Set(['a', 'a~']));
    expect(hub.follows.get('a')).toBe(1);

    send({ id: 3, type: 'subscribe_devices', device_ids: ['b', 'c'] });
    expect(socket.take().map((f) => f.type)).toEqual(['ack', 'snapshot', 'snapshot']);

    send({ id: 4, type: 'subscribe_all' });
    expect(socket.take()).toEqual([{ type: 'ack', id: 4, epoch: 'epoch-1', fleet_seq: 10 }]);
    // Following `*`: the devices' shared frames now come on `*`.
    expect(socket.topics).toEqual(new Set(['a', 'b', 'c', '*']));

    send({ id: 5, type: 'unsubscribe_all' });
    expect(socket.take()).toEqual([{ type: 'ack', id: 5 }]);
    expect(socket.topics).toEqual(new Set(['a', 'a~', 'b', 'b~', 'c', 'c~']));

    send({ id: 6, type: 'unsubscribe_devices', device_ids: ['b', 'x'] });
    expect(socket.take()).toEqual([{ type: 'ack', id: 6, not_subscribed: ['x'] }]);

    send({ id: 7, type: 'unsubscribe_device', device_id: 'a' });
    expect(socket.take()).toEqual([{ type: 'ack', id: 7 }]);
    send({ id: 8, type: 'unsubscribe_device', device_id: 'a' });
    expect(errorOf(socket.take()[0])).toBe('not_subscribed');
    expect(socket.topics).toEqual(new Set(['c', 'c~']));
    expect([...hub.follows.keys()]).toEqual(['c']);

    hub.acknowledgeAlertAnywhere.mockResolvedValueOnce({ id: ALERT_ID });
    send({ id: 9, type: 'ack_alert', alert_id: ALERT_ID });
    await vi.waitFor(() => expect(socket.sent.length).toBe(1));
    expect(socket.take()).toEqual([{ type: 'ack', id: 9 }]);
    expect(hub.acknowledgeAlertAnywhere).toHaveBeenCalledWith(ALERT_ID, 'ws:c1', expect.any(Function));

    send({ id: 10, type: 'ack_alert', alert_id: ALERT_ID });
    await vi.waitFor(() => expect(socket.sent.length).toBe(1));
    expect(errorOf(socket.take()[0])).toBe('alert_not_found');

    send({ id: 11, type: 'auth', token: 'k' });
    expect(socket.take()).toMatchObject([{ type: 'error', id: 11, error: { code: 'invalid_token' } }]);
    // Every type the policy table names was sent above.
    expect(Object.keys(WS_POLICY).length).toBe(9);
  });

  it('answers a fault inside a handler with `internal`, reports it, and goes on', async () => {
    const { socket, send, hub, metrics } = harness();
    hub.prepareDevice = () => {
      throw new Error('boom');
    };
    send({ id: 1, type: 'subscribe_device', device_id: 'a' });
    expect(socket.take()).toMatchObject([{ type: 'error', id: 1, error: { code: 'internal' } }]);
    // The follow taken for it was released: nothing half-subscribed stays behind.
    expect(hub.follows.size).toBe(0);
    expect(await metricValue(metrics, 'vigil_internal_errors_total', { entry: 'ws' })).toBe(1);
    send({ id: 2, type: 'ping' });
    expect(socket.take()).toEqual([{ type: 'pong', id: 2 }]);
  });

  it('applies the policy: a key limited to devices may not follow others, nor the fleet feed, nor ack their alerts', async () => {
    const { socket, send, hub } = harness({ credentials: keyCredentials('k1', { deviceIds: ['a'], scopes: ['read', 'command'] }) });
    send({ id: 1, type: 'subscribe_device', device_id: 'b' });
    expect(errorOf(socket.take()[0])).toBe('forbidden');
    send({ id: 2, type: 'subscribe_all' });
    expect(errorOf(socket.take()[0])).toBe('forbidden');
    send({ id: 3, type: 'subscribe_devices', device_ids: ['a', 'b'] });
    expect(socket.take()).toMatchObject([{ type: 'error', id: 3, error: { code: 'forbidden', message: expect.stringContaining('may not read b') } }]);
    expect(hub.follows.size).toBe(0);
    hub.acknowledgeAlertAnywhere.mockImplementationOnce(async (_alert, _by, may) => (may('b') ? { id: ALERT_ID } : 'forbidden'));
    send({ id: 4, type: 'ack_alert', alert_id: ALERT_ID });
    await vi.waitFor(() => expect(socket.sent.length).toBe(1));
    expect(errorOf(socket.take()[0])).toBe('forbidden');
    send({ id: 5, type: 'subscribe_device', device_id: 'a' });
    expect(socket.take()[0]).toEqual({ type: 'ack', id: 5 });
  });

  it('limits messages per second: one `rate_limited`, extra ones ignored, closed at twice the rate; a new second starts afresh', async () => {
    const { socket, send, metrics } = harness();
    for (let i = 0; i < 10; i++) send({ id: i, type: 'ping' });
    expect(socket.take()).toHaveLength(10);
    send({ id: 10, type: 'ping' });
    expect(socket.take()).toMatchObject([{ type: 'error', id: null, error: { code: 'rate_limited' } }]);
    for (let i = 11; i < 20; i++) send({ id: i, type: 'ping' });
    expect(socket.take()).toEqual([]);
    expect(socket.closed).toBeNull();
    vi.advanceTimersByTime(1000);
    send({ id: 20, type: 'ping' });
    expect(socket.take()).toEqual([{ type: 'pong', id: 20 }]);
    for (let i = 0; i < 20; i++) send({ type: 'ping' });
    expect(socket.closed).toEqual({ code: CloseCode.rateLimited, reason: 'rate limit' });
    expect(await metricValue(metrics, 'vigil_ws_closes_total', { reason: 'rate limit' })).toBe(1);
  });

  it('counts binary frames in the same rate', () => {
    const { session, socket } = harness();
    for (let i = 0; i < 11; i++) session.onBinary(Date.now());
    expect(socket.take().map(errorOf)).toEqual([...Array<string>(10).fill('binary_not_supported'), 'rate_limited']);
  });

  it('refuses subscriptions past WS_MAX_SUBSCRIPTIONS, counting `*`, and closes a client that keeps asking', async () => {
    const { socket, send, hub, metrics } = harness({ limits: { maxMessagesPerSecond: 1000 } });
    for (const d of ['a', 'b', 'c', 'd']) send({ type: 'subscribe_device', device_id: d });
    send({ type: 'subscribe_all' });
    socket.take();
    expect(await metricValue(metrics, 'vigil_ws_subscriptions')).toBe(5);
    send({ id: 1, type: 'subscribe_device', device_id: 'e' });
    expect(socket.take()).toMatchObject([{ type: 'error', id: 1, error: { code: 'subscription_limit' } }]);
    // A device followed already is no new subscription.
    send({ id: 2, type: 'subscribe_device', device_id: 'a' });
    expect(socket.take()[0]).toEqual({ type: 'ack', id: 2 });
    send({ id: 3, type: 'subscribe_devices', device_ids: ['a', 'e'] });
    expect(errorOf(socket.take()[0])).toBe('subscription_limit');
    expect(hub.follows.has('e')).toBe(false);
    // Ten refusals are answered; the eleventh closes.
    for (let i = 0; i < 8; i++) send({ type: 'subscribe_device', device_id: 'e' });
    expect(socket.closed).toBeNull();
    send({ type: 'subscribe_device', device_id: 'e' });
    expect(socket.closed).toEqual({ code: CloseCode.subscriptionLimit, reason: 'subscription limit' });
  });

  it('releases every follow and subscription count when the socket goes', async () => {
    const { session, send, hub, metrics } = harness();
    send({ type: 'subscribe_device', device_id: 'a' });
    send({ type: 'subscribe_all', summaries: true });
    session.dispose();
    expect(hub.follows.size).toBe(0);
    expect(hub.summaries.leave).toHaveBeenCalledWith(session.socket, false);
    expect(await metricValue(metrics, 'vigil_ws_subscriptions')).toBe(0);
    session.dispose(); // twice (close after an error): counted once
    expect(await metricValue(metrics, 'vigil_ws_subscriptions')).toBe(0);
  });
});
