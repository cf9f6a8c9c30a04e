import fc from 'fast-check';

/*
 * Hostile inputs of every class the hardening suite throws at each entry: malformed percent
 * escapes, NUL and lone surrogates, huge and tiny numbers, deep nesting, oversize fields and
 * prototype keys. Generated from a fixed seed, so a failure names an input that can be replayed.
 */

/** Path segments (already in their on-the-wire, percent-encoded form). */
export const HOSTILE_PATH_SEGMENTS: readonly string[] = [
  '%E0%A4%A', // truncated escape (URIError in decodeURIComponent)
  '%', '%%', '%G1', '%zz', '%E0%A4', '%C0%AF', // invalid and overlong escapes
  '%00', 'd%00x', // NUL
  '%ED%A0%80', '%ED%BF%BF', // UTF-8 of lone surrogates (invalid UTF-8)
  '%F4%90%80%80', // beyond U+10FFFF
  '..', '%2e%2e', '%2F', 'a%2Fb', // traversal shapes
  'x'.repeat(5000), '%41'.repeat(2000), // oversize
  '__proto__', 'constructor', 'prototype',
  '%EF%BF%BF', '%F0%9F%92%A9', // noncharacter, astral
  '1e309', '-0', 'NaN', 'Infinity',
];

/** Query strings (without the `?`). */
export const HOSTILE_QUERIES: readonly string[] = [
  'limit=1e400', 'limit=-1', 'limit=NaN', 'limit=0x10', 'limit=99999999999999999999',
  'since=%ZZ', 'since=%E0%A4%A', 'since=0000-00-00', 'from=1970-01-01T00:00:00Z&to=9999-12-31T23:59:59Z',
  'window_s=1e308', 'bucket=%00', 'device_id=%ED%A0%80', 'metrics=' + 'a,'.repeat(3000),
  'cursor=%00%00', 'device_id=%00', 'since=2026-01-01T00:00:00Z%00', 'severity=%00', 'cursor=' + 'A'.repeat(10_000), 'severity=__proto__', '__proto__[x]=1', '&&&&==&=',
];

/** Header sets a client may send (name, value); values are printable ASCII, as the wire requires. */
export const HOSTILE_HEADERS: readonly (readonly [string, string])[] = [
  ['x-api-key', 'vgl_' + 'A'.repeat(12) + '_' + 'B'.repeat(43)],
  ['x-api-key', 'x'.repeat(8000)],
  ['authorization', 'Bearer ' + 'y'.repeat(4000)],
  ['authorization', 'Basic Zm9vOmJhcg=='],
  ['x-request-id', '../../etc/passwd'],
  ['content-length', '99999999999'],
  ['origin', 'null'],
  ['host', 'rebind.attacker.example'],
  ['content-type', 'text/plain'],
  ['idempotency-key', 'k'.repeat(3000)],
];

const deep = (depth: number, leaf: string) => '['.repeat(depth) + leaf + ']'.repeat(depth);
const deepObject = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/** JSON texts (and near-JSON) with every hostile class; used as MQTT payloads, WS frames and HTTP bodies. */
export const HOSTILE_JSON_TEXTS: readonly string[] = [
  '{"metrics":{"te\\u0000mp":1}}',
  '{"metrics":{"temp":1},"name":"a\\u0000b"}',
  '{"metrics":{"\\ud800":1}}',
  '{"metrics":{"t":1},"note":"\\udfff"}',
  '{"battery_level":1e308,"rssi":-1e308}',
  '{"battery_level":5e-324,"rssi":-0}',
  '{"battery_level":9007199254740993}',
  '{"timestamp":-8640000000000001}',
  '{"timestamp":0}',
  '{"timestamp":"1970-01-01T00:00:00Z"}',
  '{"timestamp":99999999999999999999}',
  '{"metrics":{"x":1e400}}',
  '{"__proto__":{"polluted":1},"metrics":{"constructor":1}}',
  deep(10_000, '1'),
  deepObject(5000),
  '{"metrics":{' + Array.from({ length: 5000 }, (_, i) => `"k${i}":${i}`).join(',') + '}}',
  '{"name":"' + 'n'.repeat(100_000) + '"}',
  '{"command":"' + 'c'.repeat(50_000) + '","params":' + deepObject(200) + '}',
  '{"command_id":"\\u0000","status":"succeeded","result":{"out":"\\u0000"}}',
  '{"command_id":1e309,"status":"failed","result":"\\ud83d"}',
  '{"state":"offline"}', '"offline"', 'Offline', 'online\u0000',
  '{"device_ids":["\\u0000","\\ud800","' + 'd'.repeat(300) + '"]}',
  '{"type":"subscribe_device","device_id":"\\u0000"}',
  '{"type":"ack_alert","alert_id":"\\ud800","id":1e309}',
  '{"type":"auth","token":"' + 't'.repeat(20_000) + '"}',
  '{"type":"subscribe_device","device_id":"' + 'a'.repeat(129) + '"}',
  '{"type":"__proto__"}',
  '{', '[', '"', 'nul', 'truefalse', '', ' ', '\u0000', '\uFEFF{}', '{}'.repeat(10_000),
];

/** Raw byte payloads that are not UTF-8 text at all. */
export const HOSTILE_BYTES: readonly Buffer[] = [
  Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from('{"metrics":{"a":1}}\u0000', 'utf8'),
  Buffer.alloc(0),
];

/** More texts drawn from fast-check (fixed seed): arbitrary JSON values, their truncations and strings with any code unit. */
export function generatedTexts(count: number, seed = 1207): string[] {
  const arb = fc.oneof(
    fc.json({ depthSize: 'medium' }),
    fc.json().map((j) => j.slice(0, Math.max(0, j.length - 1))),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.oneof(fc.double(), fc.string({ unit: 'binary' }), fc.boolean())).map((metrics) =>
      JSON.stringify({ metrics, battery_level: 50 }),
    ),
  );
  return fc.sample(arb, { numRuns: count, seed });
}
