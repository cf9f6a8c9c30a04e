import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CloseCode } from '../../src/hub/protocol.js';
import type { Credentials } from '../../src/security/api-keys.js';
import { harness, keyCredentials } from './session-fakes.js';

describe('session authentication', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  /** A JWT's verification: resolved when the test says. */
  const deferred = () => {
    let resolve!: (credentials: Credentials | null) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<Credentials | null>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };

  it('before `auth`, answers ping and refuses everything else with `unauthenticated`', () => {
    const { socket, send, hub } = harness({ credentials: null });
    send({ id: 1, type: 'ping' });
    send({ id: 2, type: 'subscribe_device', device_id: 'a' });
    send({ id: 3, type: 'subscribe_all' });
    expect(socket.take()).toMatchObject([{ type: 'pong', id: 1 }, { error: { code: 'unauthenticated' } }, { error: { code: 'unauthenticated' } }]);
    expect(hub.follows.size).toBe(0);
  });

  it('authenticates with an API key in an `auth` message, then serves', () => {
    const tokens: string[] = [];
    const { socket, send } = harness({ credentials: null, authenticate: (token) => (tokens.push(token), token === 'good' ? keyCredentials('k1') : null) });
    send({ id: 1, type: 'auth', token: 'good' });
    send({ id: 2, type: 'subscribe_device', device_id: 'a' });
    expect(tokens).toEqual(['good']);
    expect(socket.take().map((f) => [f.type, f.id])).toEqual([
      ['ack', 1],
      ['ack', 2],
      ['snapshot', undefined],
    ]);
  });

  it('answers a bad token with `invalid_token` and closes 4401', () => {
    const { socket, send } = harness({ credentials: null });
    send({ id: 1, type: 'auth', token: 'bad' });
    expect(socket.take()).toMatchObject([{ type: 'error', id: 1, error: { code: 'invalid_token' } }]);
    expect(socket.closed).toEqual({ code: CloseCode.unauthenticated, reason: 'invalid token' });
  });

  it('holds the messages after an `auth` whose JWT is verified and handles them in order once it is', async () => {
    const jwt = deferred();
    const { socket, send } = harness({ credentials: null, authenticate: () => jwt.promise });
    send({ id: 1, type: 'auth', token: 'eyJ.jwt' });
    send({ id: 2, type: 'subscribe_device', device_id: 'a' });
    send({ id: 3, type: 'ping' });
    expect(socket.sent).toEqual([]);
    jwt.resolve(keyCredentials('jwt:sub'));
    await vi.waitFor(() => expect(socket.sent.length).toBe(4));
    expect(socket.take().map((f) => [f.type, f.id])).toEqual([
      ['ack', 1],
      ['ack', 2],
      ['snapshot', undefined],
      ['pong', 3],
    ]);
  });

  it('refuses the messages past 64 waiting for a JWT with `rate_limited`', async () => {
    const jwt = deferred();
    const { socket, send } = harness({ credentials: null, authenticate: () => jwt.promise, limits: { maxMessagesPerSecond: 1000 } });
    send({ id: 0, type: 'auth', token: 'eyJ.jwt' });
    for (let i = 1; i <= 65; i++) send({ id: i, type: 'ping' });
    expect(socket.take()).toMatchObject([{ type: 'error', id: null, error: { code: 'rate_limited' } }]);
    jwt.resolve(keyCredentials('jwt:sub'));
    await vi.waitFor(() => expect(socket.sent.length).toBe(65));
    expect(socket.take().map((f) => f.id)).toEqual([0, ...Array.from({ length: 64 }, (_, i) => i + 1)]);
  });

  it('answers a verification that failed with `internal` and handles the waiting messages as unauthenticated', async () => {
    const jwt = deferred();
    const { socket, send } = harness({ credentials: null, authenticate: () => jwt.promise });
    send({ id: 1, type: 'auth', token: 'eyJ.jwt' });
    send({ id: 2, type: 'subscribe_device', device_id: 'a' });
    jwt.reject(new Error('verifier broke'));
    await vi.waitFor(() => expect(socket.sent.length).toBe(2));
    expect(socket.take()).toMatchObject([{ id: 1, error: { code: 'internal' } }, { id: 2, error: { code: 'unauthenticated' } }]);
    expect(socket.closed).toBeNull();
  });

  it('renews with a token of the same key (moving the expiry) but keeps the key it authenticated with', () => {
    const { session, socket, send } = harness({
      credentials: keyCredentials('k1', { expiresAt: 2_000_000 }),
      authenticate: (token) => (token === 'same' ? keyCredentials('k1', { expiresAt: 3_000_000 }) : keyCredentials('k2')),
    });
    send({ id: 1, type: 'auth', token: 'other' });
    expect(socket.take()).toMatchObject([{ id: 1, error: { code: 'forbidden' } }]);
    send({ id: 2, type: 'auth', token: 'same' });
    expect(socket.take()).toEqual([{ type: 'ack', id: 2 }]);
    session.checkCredentials(2_500_000, () => true, false);
    expect(socket.closed).toBeNull();
    session.checkCredentials(3_000_000, () => true, false);
    expect(socket.closed).toEqual({ code: CloseCode.tokenExpired, reason: 'token expired' });
  });

  it('ends a session whose key was revoked, and an anonymous one once keys are required', () => {
    const keyed = harness({ credentials: keyCredentials('k1') });
    keyed.session.checkCredentials(Date.now(), (id) => id !== 'k1', false);
    expect(keyed.socket.closed).toEqual({ code: CloseCode.keyRevoked, reason: 'key revoked' });
    const anonymous = harness();
    anonymous.session.checkCredentials(Date.now(), () => true, true);
    expect(anonymous.socket.closed).toBeNull();
    anonymous.session.checkCredentials(Date.now(), () => true, false);
    expect(anonymous.socket.closed).toEqual({ code: CloseCode.unauthenticated, reason: 'authentication now required' });
  });

  it('closes a connection that did not authenticate in time, and only such a one', () => {
    const waiting = harness({ credentials: null });
    waiting.session.closeUnauthenticated();
    expect(waiting.socket.closed).toEqual({ code: CloseCode.unauthenticated, reason: 'authentication timeout' });
    const done = harness({ credentials: null, authenticate: () => keyCredentials('k1') });
    done.send({ type: 'auth', token: 'k' });
    done.session.closeUnauthenticated();
    expect(done.socket.closed).toBeNull();
  });
});
