import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { nowUs } from './latency-summary.js';

/**
 * C WebSocket clients that only count frames: a hand-rolled handshake, then frame headers are
 * walked without decoding payloads, so one process can take millions of frames a second and the
 * server, not the load generator, sets the pace. (The `ws`-based generator tops out near 0.5M/s
 * here.) Mode `hub` subscribes each client to device `bench-{(i × stride) % devices}` first. Prints 'ready'
 * once every client is upgraded, then {"frames","seconds"} once `expect` frames arrived or it idled.
 */
const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    clients: { type: 'string', default: '1000' },
    devices: { type: 'string', default: '1' },
    // Client i follows device bench-{(i * stride) % devices}: with a stride the followed devices are
    // spread over the fleet, so a round-robin publisher reaches one every `stride` messages throughout.
    stride: { type: 'string', default: '1' },
    mode: { type: 'string', default: 'raw' },
    expect: { type: 'string', default: '0' },
    'idle-ms': { type: 'string', default: '3000' },
    latency: { type: 'string', default: 'false' },
    // On finishing, print `measured`, then hold the connections this long before the result and exit:
    // a caller can read the server's state before 10,000 sockets close at once (itself a stall).
    linger: { type: 'string', default: '0' },
  },
});
const measureLatency = values.latency === 'true';
/** Publish → receive in µs, from the publisher's `"t":` in each frame (read from the bytes, no decoding). */
const samples = new Float64Array(measureLatency ? 4_000_000 : 0);
let sampled = 0;
const T = Buffer.from('"t":');
const UPDATE = Buffer.from('{"type":"device_update"');
let updates = 0;
const url = new URL(values.url!);
const clients = Number(values.clients);
const devices = Number(values.devices);
const stride = Number(values.stride);
const expected = Number(values.expect);
let frames = 0;
let first = 0;
let last = 0;
let upgraded = 0;
let idle: NodeJS.Timeout | undefined;

let finishing = false;
const finish = () => {
  if (finishing) return;
  finishing = true;
  clearTimeout(idle);
  const linger = Number(values.linger);
  if (linger <= 0) return report();
  process.stdout.write('measured\n');
  setTimeout(report, linger);
};

const report = () => {
  const sorted = samples.subarray(0, sampled).sort();
  const at = (p: number) => (sampled ? sorted[Math.min(sampled - 1, Math.floor(p * sampled))]! / 1000 : null);
  process.stdout.write(`${JSON.stringify({ frames, updates, seconds: (last - first) / 1000, p50: at(0.5), p99: at(0.99), p999: at(0.999), samples: sampled })}\n`);
  process.exit(0);
};

function sample(data: Buffer, start: number, end: number): void {
  const found = data.indexOf(T, start);
  if (found === -1 || found >= end || sampled >= samples.length) return;
  let t = 0;
  for (let i = found + 4; i < end; i++) {
    const digit = data[i]! - 48;
    if (digit < 0 || digit > 9) break;
    t = t * 10 + digit;
  }
  if (t > 0) samples[sampled++] = nowUs() - t;
}

/** A masked client text frame (clients must mask). */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const header = Buffer.from([0x81, 0x80 | payload.length, ...mask]);
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, payload]);
}

function open(i: number): void {
  const socket: Socket = connect({ host: url.hostname, port: Number(url.port) });
  let handshaken = false;
  let pending: Buffer | null = null;
  /** Bytes of the current frame's payload still to skip. */
  let skip = 0;
  /** In hub mode the ack and snapshot of the subscription come first: not part of the stream. */
  let preamble = values.mode === 'hub' ? 2 : 0;
  socket.on('connect', () => {
    socket.write(
      `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  socket.on('data', (chunk: Buffer) => {
    let data = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    if (!handshaken) {
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return void (pending = data);
      handshaken = true;
      if (values.mode === 'hub') socket.write(textFrame(JSON.stringify({ type: 'subscribe_device', device_id: `bench-${(i * stride) % devices}` })));
      if (++upgraded === clients) setTimeout(() => process.stdout.write('ready\n'), 300);
      data = data.subarray(end + 4);
    }
    let at = 0;
    if (skip > 0) {
      const n = Math.min(skip, data.length);
      skip -= n;
      at = n;
    }
    while (at < data.length) {
      if (data.length - at < 2) return void (pending = data.subarray(at));
      let length = data[at + 1]! & 0x7f;
      let header = 2;
      if (length === 126) {
        if (data.length - at < 4) return void (pending = data.subarray(at));
        length = data.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (data.length - at < 10) return void (pending = data.subarray(at));
        length = Number(data.readBigUInt64BE(at + 2));
        header = 10;
      }
      const opcode = data[at]! & 0x0f;
      const available = data.length - at - header;
      if (opcode === 1 || opcode === 2) {
        if (preamble > 0) preamble--;
        else {
          const whole = available >= length;
          if (whole && data.compare(UPDATE, 0, UPDATE.length, at + header, at + header + UPDATE.length) === 0) {
            updates++;
            if (measureLatency) sample(data, at + header, at + header + length);
          }
          countFrame();
        }
      }
      if (available < length) {
        skip = length - available;
        return;
      }
      at += header + length;
    }
  });
  socket.on('error', (e) => process.stderr.write(`client ${i}: ${e.message}\n`));
}

function countFrame(): void {
  const now = performance.now();
  if (frames++ === 0) first = now;
  last = now;
  // Hub mode waits for `expect` device updates (status and health frames come too); raw for frames.
  if (finishing) return;
  if (expected > 0 && (values.mode === 'hub' ? updates : frames) >= expected) return finish();
  if ((frames & 1023) === 0 || expected === 0) {
    clearTimeout(idle);
    idle = setTimeout(finish, Number(values['idle-ms']));
  }
}

for (let i = 0; i < clients; i++) {
  open(i);
  // Connect in small waves: a listen backlog overflow would drop connections silently.
  if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20));
}
