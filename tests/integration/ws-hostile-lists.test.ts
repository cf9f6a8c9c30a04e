import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { MAX_DEVICES_PER_REQUEST } from '../../src/hub/protocol.js';
import { httpUrl, startHubWithEnv, testHubEnv, wsUrl } from '../helpers/hub.js';
import { TestClient } from '../helpers/ws-client.js';

/*
 * subscribe_devices / unsubscribe_devices and the resumable `*` feed under hostile requests on the
 * embedded hub: 10 000 ids, repeats, invalid ids among valid ones, resume maps with hostile keys and
 * values, since_fleet_seq negative, huge, fractional or of another epoch. Each is answered (error or
 * ack as documented), counted, and the connection and the hub go on.
 */
let hub: RunningHub;
const clients: TestClient[] = [];
beforeAll(async () => {
  hub = await startHubWithEnv({ ...testHubEnv('embedded'), WS_MAX_MESSAGES_PER_S: '100000', WS_MAX_SUBSCRIPTIONS: '600', WS_MAX_FRAME_BYTES: String(1024 * 1024) });
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.close();
  await hub?.stop();
});
const connect = async () => {
  const c = await TestClient.connect(wsUrl(hub));
  clients.push(c);
  return c;
};
const errorCode = (f: Record<string, unknown>) => (f.error as { code?: string } | undefined)?.code;
const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `dev-${from + i}`);

it('refuses lists past the bounds or holding one invalid id whole, and takes repeats once', async () => {
  const c = await connect();
  let id = 1;
  const cases: [unknown, string][] = [
    [ids(10_000), 'invalid_device_id'],
    [ids(MAX_DEVICES_PER_REQUEST + 1), 'invalid_device_id'],
    [[], 'invalid_device_id'],
    ['dev-1', 'invalid_device_id'],
    [{ 0: 'dev-1' }, 'invalid_device_id'],
    [[...ids(10), 'bad/id'], 'invalid_device_id'],
    [[...ids(10), ''], 'invalid_device_id'],
    [[...ids(10), 'a'.repeat(129)], 'invalid_device_id'],
    [[...ids(10), 42], 'invalid_device_id'],
    [[...ids(10), null], 'invalid_device_id'],
    [[...ids(10), 'a\u0000b'], 'invalid_device_id'],
    [[...ids(10), '\ud800'], 'invalid_device_id'],
  ];
  for (const [list, code] of cases) {
    for (const type of ['subscribe_devices', 'unsubscribe_devices']) {
      const answer = await c.request({ type, device_ids: list }, id++);
      expect(errorCode(answer), `${type} ${JSON.stringify(list).slice(0, 60)}`).toBe(code);
    }
  }
  // Nothing was subscribed by the refused lists.
  expect(await c.request({ type: 'unsubscribe_devices', device_ids: ['dev-1'] }, id++)).toMatchObject({ type: 'ack', not_subscribed: ['dev-1'] });
  // 500 repeats of one id are one subscription (one snapshot).
  const before = c.frames.length;
  expect(await c.request({ type: 'subscribe_devices', device_ids: Array.from({ length: 500 }, () => 'dev-rep') }, id++)).toMatchObject({ type: 'ack' });
  await c.next((f) => f.type === 'snapshot' && f.device_id === 'dev-rep');
  expect(c.frames.slice(before).filter((f) => f.type === 'snapshot').length).toBe(1);
  // WS_MAX_SUBSCRIPTIONS (600) counts new ids: 500 + 500 is refused whole, nothing of it subscribed.
  expect((await c.request({ type: 'subscribe_devices', device_ids: ids(500, 1000) }, id++)).type).toBe('ack');
  expect(errorCode(await c.request({ type: 'subscribe_devices', device_ids: ids(500, 2000) }, id++))).toBe('subscription_limit');
  expect(await c.request({ type: 'unsubscribe_devices', device_ids: ['dev-2000'] }, id++)).toMatchObject({ not_subscribed: ['dev-2000'] });
  expect((await c.request({ type: 'ping' }, id++)).type).toBe('pong');
}, 60_000);

it('bounds the snapshots subscribe_devices may ask for per second: listing followed devices again and again is refused', async () => {
  const c = await connect();
  const list = ids(500, 5000);
  expect((await c.request({ type: 'subscribe_devices', device_ids: list }, 1)).type).toBe('ack');
  // Three more of the same 500 at once: 2000 snapshots asked within a second, past WS_MAX_SUBSCRIPTIONS (600).
  const answers = await Promise.all([2, 3, 4].map((n) => c.request({ type: 'subscribe_devices', device_ids: list }, n)));
  expect(answers.filter((a) => errorCode(a) === 'rate_limited').length).toBeGreaterThanOrEqual(2);
  const metrics = await (await fetch(httpUrl(hub, '/metrics'))).text();
  expect(Number(/vigil_ws_client_errors_total\{code="rate_limited"\} (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThanOrEqual(2);
  // The connection goes on; the subscriptions stand (unsubscribing finds them all).
  expect(await c.request({ type: 'unsubscribe_devices', device_ids: list }, 5)).toEqual({ type: 'ack', id: 5 });
}, 60_000);

it('refuses hostile resume maps whole (invalid_resume) and takes well-formed ones', async () => {
  const c = await connect();
  let id = 1;
  const list = ['r-1', 'r-2'];
  const hostile: unknown[] = [
    [],
    'r-1',
    null,
    { 'r-3': { since_seq: 1, epoch: 'e' } }, // an id not listed
    { __proto__: null, 'r-1': { since_seq: -1, epoch: 'e' } },
    { 'r-1': { since_seq: 1.5, epoch: 'e' } },
    { 'r-1': { since_seq: 2 ** 53, epoch: 'e' } },
    { 'r-1': { since_seq: '1', epoch: 'e' } },
    { 'r-1': { since_seq: 1, epoch: '' } },
    { 'r-1': { since_seq: 1, epoch: 'e'.repeat(65) } },
    { 'r-1': { since_seq: 1 } },
    { 'r-1': null },
    { 'r-1': [1, 'e'] },
    JSON.parse('{"__proto__":{"since_seq":1,"epoch":"e"}}'),
  ];
  for (const resume of hostile) {
    const answer = await c.request({ type: 'subscribe_devices', device_ids: list, resume }, id++);
    expect(errorCode(answer), JSON.stringify(resume)).toBe('invalid_resume');
  }
  expect(await c.request({ type: 'unsubscribe_devices', device_ids: list }, id++)).toMatchObject({ not_subscribed: list });
  // Another epoch, or a seq past the head: not recovered, a snapshot instead.
  const answer = await c.request({ type: 'subscribe_devices', device_ids: list, resume: { 'r-1': { since_seq: 2 ** 53 - 1, epoch: 'other' }, 'r-2': { since_seq: 0, epoch: 'other' } } }, id++);
  expect(answer).toMatchObject({ type: 'ack', recovered: { 'r-1': false, 'r-2': false } });
}, 60_000);

it('refuses since_fleet_seq that is not a non-negative integer; another epoch or a seq past the head is not recovered', async () => {
  const c = await connect();
  let id = 1;
  for (const [since, epoch] of [[-1, 'e'], [1.5, 'e'], [2 ** 53, 'e'], ['5', 'e'], [null, 'e'], [5, undefined], [undefined, 'e'], [5, 7], [5, 'x'.repeat(65)]] as const) {
    const answer = await c.request({ type: 'subscribe_all', since_fleet_seq: since, epoch }, id++);
    expect(errorCode(answer), `${String(since)} ${String(epoch)}`).toBe('invalid_resume');
  }
  const first = await c.request({ type: 'subscribe_all' }, id++);
  expect(first).toMatchObject({ type: 'ack', epoch: expect.any(String), fleet_seq: expect.any(Number) });
  expect((await c.request({ type: 'unsubscribe_all' }, id++)).type).toBe('ack');
  expect(await c.request({ type: 'subscribe_all', since_fleet_seq: 0, epoch: 'not-this-one' }, id++)).toMatchObject({ type: 'ack', recovered: false });
  expect((await c.request({ type: 'unsubscribe_all' }, id++)).type).toBe('ack');
  expect(await c.request({ type: 'subscribe_all', since_fleet_seq: 2 ** 53 - 1, epoch: first.epoch }, id++)).toMatchObject({ type: 'ack', recovered: false });
  const metrics = await (await fetch(httpUrl(hub, '/metrics'))).text();
  expect(Number(/vigil_ws_client_errors_total\{code="invalid_resume"\} (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThanOrEqual(9);
}, 60_000);
