import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CloseCode } from '../../src/hub/protocol.js';
import { harness, metricValue, status, update } from './session-fakes.js';

describe('a lagging session', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  const subscribed = (deviceIds: readonly string[]) => {
    const h = harness();
    for (const deviceId of deviceIds) h.send({ type: 'subscribe_device', device_id: deviceId });
    h.socket.take();
    return h;
  };

  it('leaves the topics, conflates per (channel, kind) and sends the newest of each on drain, in order', async () => {
    const { session, socket, lag, metrics } = subscribed(['a', 'b']);
    expect([...socket.topics].sort()).toEqual(['a', 'a~', 'b', 'b~']);
    socket.buffered = 5000;
    session.enterLag(Date.now());
    expect(session.lagging).toBe(true);
    expect(socket.topics.size).toBe(0);
    lag.deliver('a', 'u', update('a', 6));
    lag.deliver('b', 'u', update('b', 6));
    lag.deliver('a', 'u', update('a', 7));
    lag.deliver('a', 's', status('a', 8, 1, 'offline'));
    expect(socket.sent).toEqual([]);
    expect(await metricValue(metrics, 'vigil_ws_conflated_frames_total')).toBe(1);

    socket.buffered = 0;
    expect(session.catchUp(Date.now())).toBe(true);
    // b's update first: a's was replaced by a newer one, which moved to the end.
    expect(socket.take().map((f) => [f.device_id, f.type, f.seq])).toEqual([
      ['b', 'device_update', 6],
      ['a', 'device_update', 7],
      ['a', 'status_change', 8],
    ]);
    expect(session.lagging).toBe(false);
    expect([...socket.topics].sort()).toEqual(['a', 'a~', 'b', 'b~']);
    // Back on the topics: the lag router no longer hands it frames.
    lag.deliver('a', 'u', update('a', 9));
    expect(socket.sent).toEqual([]);
    expect(await metricValue(metrics, 'vigil_ws_lag_episodes_total')).toBe(1);
    expect(await metricValue(metrics, 'vigil_ws_lagging_clients')).toBe(0);
  });

  it('stays lagging while the buffer is still above half the threshold, and sends nothing more meanwhile', () => {
    const { session, socket, lag } = subscribed(['a']);
    socket.buffered = 5000;
    session.enterLag(Date.now());
    lag.deliver('a', 'u', update('a', 6));
    socket.buffered = 501;
    expect(session.catchUp(Date.now())).toBe(true);
    expect(socket.sent).toEqual([]);
    expect(session.lagging).toBe(true);
  });

  it('sends what is pending but keeps lagging when sending it fills the buffer again', () => {
    const { session, socket, lag } = subscribed(['a']);
    socket.buffered = 5000;
    session.enterLag(Date.now());
    lag.deliver('a', 'u', update('a', 6));
    socket.buffered = 0;
    const send = socket.send.bind(socket);
    socket.send = (frame) => {
      send(frame);
      socket.buffered = 900;
    };
    session.catchUp(Date.now());
    expect(socket.take().map((f) => f.seq)).toEqual([6]);
    expect(session.lagging).toBe(true);
    expect(socket.topics.size).toBe(0);
    socket.send = send;
    lag.deliver('a', 'u', update('a', 7));
    socket.buffered = 0;
    session.catchUp(Date.now());
    expect(socket.take().map((f) => f.seq)).toEqual([7]);
    expect(session.lagging).toBe(false);
  });

  it('closes a client still stuck past the slow-client deadline with 4008, not before', async () => {
    const { session, socket, metrics } = subscribed(['a']);
    socket.buffered = 5000;
    session.enterLag(Date.now());
    vi.advanceTimersByTime(3000);
    expect(session.catchUp(Date.now())).toBe(true);
    expect(socket.closed).toBeNull();
    vi.advanceTimersByTime(1);
    expect(session.catchUp(Date.now())).toBe(false);
    expect(socket.closed).toEqual({ code: CloseCode.slowConsumer, reason: 'slow consumer' });
    expect(await metricValue(metrics, 'vigil_ws_closes_total', { reason: 'slow consumer' })).toBe(1);
  });

  it('does not conflate a device frame that reaches it on `*` as well', () => {
    const { session, socket, lag } = subscribed(['a']);
    session.onText(JSON.stringify({ type: 'subscribe_all' }), Date.now());
    socket.take();
    socket.buffered = 5000;
    session.enterLag(Date.now());
    lag.deliver('a', 's', status('a', 6, 11, 'offline'));
    lag.deliver('*', 's', status('a', 6, 11, 'offline'));
    lag.deliver('a', 'u', update('a', 7));
    socket.buffered = 0;
    session.catchUp(Date.now());
    expect(socket.take().map((f) => [f.type, f.seq])).toEqual([
      ['status_change', 6],
      ['device_update', 7],
    ]);
    expect(socket.topics.has('*')).toBe(true);
    expect(socket.topics.has('a~')).toBe(false);
  });

  it('pauses the fleet summaries while lagging and has them resent on catching up', () => {
    const { session, socket, hub } = subscribed([]);
    session.onText(JSON.stringify({ type: 'subscribe_all', summaries: true }), Date.now());
    expect(hub.summaries.join).toHaveBeenCalledWith(socket, false);
    socket.buffered = 5000;
    session.enterLag(Date.now());
    expect(hub.summaries.pause).toHaveBeenCalledWith(socket);
    socket.buffered = 0;
    session.catchUp(Date.now());
    expect(hub.summaries.resend).toHaveBeenCalledWith(socket);
  });

  it('releases its lag follows and the lagging count when the socket closes', async () => {
    const { session, socket, lag, hub, metrics } = subscribed(['a']);
    socket.buffered = 5000;
    session.enterLag(Date.now());
    session.dispose();
    lag.deliver('a', 'u', update('a', 6));
    expect(socket.sent).toEqual([]);
    expect(hub.follows.size).toBe(0);
    expect(await metricValue(metrics, 'vigil_ws_lagging_clients')).toBe(0);
  });
});
