import { describe, expect, it } from 'vitest';
import { decodeClientMessage, encodeAck, encodeError } from '../../src/hub/protocol.js';
import { MAX_JWT_BYTES } from '../../src/security/jwt.js';

const decode = (text: string) => decodeClientMessage(text, 1024);

describe('WebSocket protocol decoder', () => {
  it('decodes every client message type and keeps the id', () => {
    expect(decode('{"type":"subscribe_device","device_id":"d1","id":7}')).toEqual({ ok: true, message: { type: 'subscribe_device', id: 7, deviceId: 'd1', resume: null } });
    expect(decode('{"type":"subscribe_device","device_id":"d1","since_seq":41,"epoch":"e1"}')).toMatchObject({
      ok: true,
      message: { resume: { sinceSeq: 41, epoch: 'e1' } },
    });
    expect(decode('{"type":"unsubscribe_device","device_id":"d1","id":"x"}')).toMatchObject({ ok: true, message: { id: 'x' } });
    for (const type of ['unsubscribe_all', 'ping']) {
      expect(decode(JSON.stringify({ type }))).toEqual({ ok: true, message: { type, id: null } });
    }
    expect(decode('{"type":"subscribe_all"}')).toEqual({ ok: true, message: { type: 'subscribe_all', id: null, resume: null, summaries: false } });
    expect(decode('{"type":"subscribe_all","since_fleet_seq":9,"epoch":"e1","id":2}')).toEqual({
      ok: true,
      message: { type: 'subscribe_all', id: 2, resume: { sinceFleetSeq: 9, epoch: 'e1' }, summaries: false },
    });
    expect(decode('{"type":"subscribe_devices","device_ids":["a","b","a"],"resume":{"a":{"since_seq":41,"epoch":"e"}},"id":3}')).toEqual({
      ok: true,
      message: { type: 'subscribe_devices', id: 3, deviceIds: ['a', 'b'], resume: new Map([['a', { sinceSeq: 41, epoch: 'e' }]]) },
    });
    expect(decode('{"type":"unsubscribe_devices","device_ids":["a"]}')).toEqual({ ok: true, message: { type: 'unsubscribe_devices', id: null, deviceIds: ['a'] } });
    expect(decode('{"type":"subscribe_all","summaries":true,"id":3}')).toEqual({ ok: true, message: { type: 'subscribe_all', id: 3, resume: null, summaries: true } });
    expect(decode('{"type":"subscribe_all","summaries":1}')).toMatchObject({ ok: false, error: { code: 'invalid_message' } });
  });

  it.each([
    ['nope', 'invalid_json'],
    ['"text"', 'invalid_message'],
    ['{"type":5}', 'invalid_message'],
    ['{"type":"hack"}', 'unknown_type'],
    ['{"type":"subscribe_device","device_id":""}', 'invalid_device_id'],
    ['{"type":"subscribe_device","device_id":"a b"}', 'invalid_device_id'],
    [JSON.stringify({ type: 'ping', pad: 'x'.repeat(1100) }), 'frame_too_large'],
    ['{"type":"subscribe_device","device_id":"d1","since_seq":5}', 'invalid_resume'],
    ['{"type":"subscribe_device","device_id":"d1","since_seq":-1,"epoch":"e"}', 'invalid_resume'],
    ['{"type":"subscribe_device","device_id":"d1","since_seq":1.5,"epoch":"e"}', 'invalid_resume'],
    ['{"type":"subscribe_device","device_id":"d1","since_seq":"5","epoch":"e"}', 'invalid_resume'],
    ['{"type":"subscribe_all","since_fleet_seq":5}', 'invalid_resume'],
    ['{"type":"subscribe_all","epoch":"e"}', 'invalid_resume'],
    ['{"type":"subscribe_devices","device_ids":[]}', 'invalid_device_id'],
    ['{"type":"subscribe_devices","device_ids":"a"}', 'invalid_device_id'],
    ['{"type":"subscribe_devices","device_ids":["a","b c"]}', 'invalid_device_id'],
    ['{"type":"subscribe_devices","device_ids":["a"],"resume":{"b":{"since_seq":1,"epoch":"e"}}}', 'invalid_resume'],
    ['{"type":"subscribe_devices","device_ids":["a"],"resume":{"a":{"since_seq":1}}}', 'invalid_resume'],
    ['{"type":"subscribe_devices","device_ids":["a"],"resume":[]}', 'invalid_resume'],
  ])('rejects %s as %s', (text, code) => {
    const r = decode(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe(code);
  });

  it('bounds the device list of subscribe_devices (MAX_DEVICES_PER_REQUEST), whatever the frame limit', () => {
    const list = (n: number) => JSON.stringify({ type: 'subscribe_devices', device_ids: Array.from({ length: n }, (_, i) => `d${i}`) });
    expect(decodeClientMessage(list(500), 1 << 20).ok).toBe(true);
    expect(decodeClientMessage(list(501), 1 << 20)).toMatchObject({ ok: false, error: { code: 'invalid_device_id' } });
  });

  it('echoes the id of a bad request when it can read one', () => {
    const r = decode('{"type":"hack","id":3}');
    expect(r.ok ? null : r.error.id).toBe(3);
    expect(decode('{"type":"ping","id":{"evil":1}}')).toMatchObject({ ok: true, message: { id: null } });
  });

  it('encodes acks and errors', () => {
    expect(JSON.parse(encodeAck(4))).toEqual({ type: 'ack', id: 4 });
    expect(JSON.parse(encodeError({ id: null, code: 'rate_limited', message: 'slow down' }))).toEqual({
      type: 'error',
      id: null,
      error: { code: 'rate_limited', message: 'slow down' },
    });
  });
});

describe('auth message tokens', () => {
  it('takes a token as long as a JWT may be (an RS256 JWT with claims is ~600+ characters), refuses longer', () => {
    const jwtLike = `${'h'.repeat(40)}.${'p'.repeat(2000)}.${'s'.repeat(342)}`;
    expect(decodeClientMessage(JSON.stringify({ type: 'auth', token: jwtLike, id: 1 }), 16 * 1024)).toEqual({ ok: true, message: { type: 'auth', id: 1, token: jwtLike } });
    const tooLong = 't'.repeat(MAX_JWT_BYTES + 1);
    expect(decodeClientMessage(JSON.stringify({ type: 'auth', token: tooLong, id: 2 }), 16 * 1024)).toMatchObject({ ok: false, error: { code: 'invalid_token' } });
  });
});
