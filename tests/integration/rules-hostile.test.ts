import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningHub } from '../../src/app.js';
import { RULE_SET_LIMITS } from '../../src/domain/rule-set.js';
import { httpUrl, startHubWithEnv, testHubEnv } from '../helpers/hub.js';

/*
 * PUT /rules as an attacker or a large fleet would use it, on the embedded hub: rule sets as large
 * as the documented bounds (10 000 per-device overrides) are taken, anything beyond them or hostile
 * (prototype keys, absurd durations and thresholds, regex-like or huge metric names, If-Match
 * variants) is refused with a 4xx and counted, and the hub answers on.
 */
let hub: RunningHub;
beforeAll(async () => {
  hub = await startHubWithEnv({ ...testHubEnv('embedded'), HTTP_RATE_PER_S: '100000', HTTP_RATE_BURST: '100000' });
}, 60_000);
afterAll(async () => {
  await hub?.stop();
});

const put = (body: string, ifMatch?: string) =>
  fetch(httpUrl(hub, '/rules'), { method: 'PUT', headers: { 'content-type': 'application/json', ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) }, body });
const refused = async (code: string) => {
  const text = await (await fetch(httpUrl(hub, '/metrics'))).text();
  return Number(new RegExp(`vigil_http_refused_total\\{code="${code}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
};
const overrides = (devices: number, perDevice: number) => {
  const map: Record<string, unknown[]> = {};
  for (let d = 0; d < devices; d++) {
    map[`device-${String(d).padStart(5, '0')}`] = Array.from({ length: perDevice }, (_, r) => ({ type: `rule-${r}`, metric: 'metrics.temperature', op: '>', raise: 50 + r, severity: 'major' }));
  }
  return map;
};

it('takes a rule set as large as its documented bounds: 10 000 devices with overrides, 20 000 rules', async () => {
  const body = JSON.stringify({ devices: overrides(RULE_SET_LIMITS.devices, RULE_SET_LIMITS.totalRules / RULE_SET_LIMITS.devices) });
  expect(body.length).toBeGreaterThan(64 * 1024); // beyond the default HTTP_MAX_BODY_BYTES
  const answer = await put(body);
  expect(answer.status, (await answer.clone().text()).slice(0, 300)).toBe(200);
  const stored = (await (await fetch(httpUrl(hub, '/rules'))).json()) as { devices: Record<string, unknown[]> };
  expect(Object.keys(stored.devices)).toHaveLength(RULE_SET_LIMITS.devices);
}, 60_000);

it('refuses one device or one rule past the bounds with 422, and a body past the rule-set body bound with 413 (counted)', async () => {
  expect((await put(JSON.stringify({ devices: overrides(RULE_SET_LIMITS.devices + 1, 1) }))).status).toBe(422);
  expect((await put(JSON.stringify({ devices: overrides(RULE_SET_LIMITS.devices, 2), rules: [{ type: 'x', metric: 'rssi', op: '<', raise: -90 }] }))).status).toBe(422);
  const before = await refused('body_too_large');
  const huge = `{"rules":[],"pad":"${'p'.repeat(RULE_SET_LIMITS.bodyBytes)}"}`;
  expect((await put(huge)).status).toBe(413);
  expect(await refused('body_too_large')).toBe(before + 1);
}, 60_000);

it('refuses hostile rules with 422 naming the field, and stays up', async () => {
  const rule = (over: Record<string, unknown>) => JSON.stringify({ rules: [{ type: 't', metric: 'metrics.t', op: '>', raise: 1, ...over }] });
  const hostile: Record<string, string> = {
    'infinite raise': rule({ raise: 1e400 }),
    'string raise': rule({ raise: '5' }),
    'negative for_s': rule({ for_s: -1 }),
    'for_s of a year': rule({ for_s: 365 * 86_400 }),
    'stale_after_s of a century': JSON.stringify({ rules: [{ metric: 'metrics.t', stale_after_s: 3e9 }] }),
    'zero stale_after_s': JSON.stringify({ rules: [{ metric: 'metrics.t', stale_after_s: 0 }] }),
    'fractional min_samples': rule({ min_samples: 1.5 }),
    'escalation after 100 years': rule({ escalation: [{ after_s: 3.2e9, severity: 'critical' }] }),
    'regex-like metric': rule({ metric: 'metrics.(a+)+$' }),
    'very long metric': rule({ metric: `metrics.${'m'.repeat(10_000)}` }),
    'unknown field': rule({ eval: 'process.exit()' }),
    '__proto__ device': '{"devices":{"__proto__":[{"type":"t","metric":"rssi","op":"<","raise":1}]}}',
    '__proto__ device type': '{"device_types":{"__proto__":[]}}',
    '__proto__ at the top': '{"__proto__":{"polluted":true}}',
    'rules as an object': '{"rules":{"0":{"type":"t"}}}',
    'deep nesting': `{"rules":${'['.repeat(5000)}${']'.repeat(5000)}}`,
    'wide array': `{"rules":[${Array.from({ length: 5000 }, () => '{}').join(',')}]}`,
    'lone surrogate type': rule({ type: '\ud800' }),
    'NUL in a device id': '{"devices":{"a\\u0000b":[]}}',
  };
  const codes = ['invalid_body', 'unstorable_text', 'invalid_json'];
  const counted = async () => (await Promise.all(codes.map(refused))).reduce((x, y) => x + y, 0);
  const before = await counted();
  for (const [label, body] of Object.entries(hostile)) {
    const answer = await put(body);
    expect(answer.status, label).toBeGreaterThanOrEqual(400);
    expect(answer.status, label).toBeLessThan(500);
  }
  // Every refusal is counted in vigil_http_refused_total, schema refusals (422) included.
  expect(await counted()).toBe(before + Object.keys(hostile).length);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  // Device ids and types that are Object.prototype's names are ordinary keys.
  const names = await put('{"devices":{"constructor":[{"type":"t","metric":"rssi","op":"<","raise":-100}],"toString":[]},"device_types":{"hasOwnProperty":[]}}');
  expect(names.status).toBe(200);
  expect((await fetch(httpUrl(hub, '/healthz'))).status).toBe(200);
}, 60_000);

it('reads If-Match as a version, *, or refuses it (400 invalid_if_match, counted)', async () => {
  const version = Number(((await (await fetch(httpUrl(hub, '/rules'))).json()) as { version: number }).version);
  const before = await refused('invalid_if_match');
  const bad = ['"abc"', `"${version}", "${version + 1}"`, '"99999999999"', '"-1"', `"${version}`, 'W/', `"${version}"; drop table rules`];
  for (const value of bad) expect((await put('{"rules":[]}', value)).status, value).toBe(400);
  expect(await refused('invalid_if_match')).toBe(before + bad.length);
  expect((await put('{"rules":[]}', `"${version + 5}"`)).status).toBe(412);
  expect((await put('{"rules":[]}', `W/"${version}"`)).status).toBe(200);
  expect((await put('{"rules":[]}', '*')).status).toBe(200);
});
