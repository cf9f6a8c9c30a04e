/**
 * What the owner instance pays to hand its own device frames to its clients, through the real Redis
 * fan-out: latency from toDevice to local delivery, and this process's CPU per frame, at a steady
 * rate. Run it on two commits to compare ways of delivering (docs/scaling.md, "Order of a device's
 * frames"):
 *
 *   node --import tsx bench/owner-delivery-cost.ts [redis-url] [frames-per-second] [seconds] [fan-out module]
 *
 * The module (default src/fanout/redis-fanout.ts) lets one run compare another version of the file
 * (`git show <commit>:src/fanout/redis-fanout.ts > src/fanout/redis-fanout-before.ts`).
 *
 * 100 followed devices; every 5th frame is a health_score also sent on `*` (followed too), as a
 * dashboard following devices and the fleet sees. Frames go out in ticks of 10 ms.
 */
import { RedisBus } from '../src/cluster/redis-bus.js';
import { Faults } from '../src/errors/boundary.js';
import type { createRedisFanout as Create } from '../src/fanout/redis-fanout.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';

const url = process.argv[2] ?? 'redis://127.0.0.1:6379';
const rate = Number(process.argv[3] ?? 5000);
const seconds = Number(process.argv[4] ?? 5);
const module = process.argv[5] ?? '../src/fanout/redis-fanout.js';
const { createRedisFanout } = (await import(module)) as { createRedisFanout: typeof Create };
const DEVICES = 100;
const TICK_MS = 10;
const pad = 'x'.repeat(160);

const log = createLogger('error', { write: () => undefined });
const metrics = createMetrics();
const faults = new Faults(log, metrics);
const bus = new RedisBus(url, log, faults);
await bus.connect();
const prefix = `vigil-bench:${Math.random().toString(36).slice(2)}:`;
const fanout = await createRedisFanout({ bus, keyPrefix: prefix, instanceId: 'bench', windowMs: 120_000, maxBytesPerDevice: 65_536, ttlMs: 60_000, fleetWindowMs: 120_000, fleetMaxBytes: 8 << 20, log, metrics, faults });
const sentAt = new Map<string, bigint>();
const delays: number[] = [];
let outOfOrder = 0;
const lastSeq = new Map<string, number>();
/** Order as a connection following every device and `*` sees it: the device's `h` frames come on `*` (src/hub/topics.ts). */
const ordered = (frame: string) => {
  const m = /"device_id":"([^"]+)",(?:"fleet_seq":\d+,)?"seq":(\d+)/.exec(frame)!;
  const seq = Number(m[2]);
  if (seq <= (lastSeq.get(m[1]!) ?? 0)) outOfOrder++;
  lastSeq.set(m[1]!, seq);
};
const seen = (frame: string, key: string) => {
  const m = /"device_id":"([^"]+)","seq":(\d+)/.exec(frame)!;
  const at = sentAt.get(`${m[1]}#${m[2]}`);
  if (key === 'u') ordered(frame);
  if (at !== undefined) delays.push(Number(process.hrtime.bigint() - at) / 1000);
};
let fleetFrames = 0;
await fanout.start({ toDevice: (_d, frame, key) => seen(frame, key), toAll: (frame) => {
  fleetFrames++;
  ordered(frame);
} });
for (let d = 0; d < DEVICES; d++) await fanout.follow(`bench-${d}`);
await fanout.follow('*');

const seqs = new Array<number>(DEVICES).fill(0);
const perTick = Math.max(1, Math.round((rate * TICK_MS) / 1000));
const ticks = Math.round((seconds * 1000) / TICK_MS);
let n = 0;
const send = (measure: boolean) => {
  for (let j = 0; j < perTick; j++, n++) {
    const d = n % DEVICES;
    const id = `bench-${d}`;
    const seq = ++seqs[d]!;
    if (measure) sentAt.set(`${id}#${seq}`, process.hrtime.bigint());
    if (n % 5 === 4) {
      const frame = `{"type":"health_score","device_id":"${id}","seq":${seq},"score":87.5,"pad":"${pad}"}`;
      fanout.toDevice(id, seq, frame, 'h');
      fanout.toAll(frame, `h:${id}`);
    } else fanout.toDevice(id, seq, `{"type":"device_update","device_id":"${id}","seq":${seq},"data":{"pad":"${pad}"}}`, 'u');
  }
};
const run = async (count: number, measure: boolean) => {
  const start = Date.now();
  for (let t = 0; t < count; t++) {
    send(measure);
    const wait = start + (t + 1) * TICK_MS - Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
  }
  await fanout.settled();
};
await run(100, false); // 1 s warm-up
delays.length = 0;
const cpu0 = process.cpuUsage();
await run(ticks, true);
const cpu = process.cpuUsage(cpu0);
delays.sort((x, y) => x - y);
const at = (q: number) => delays[Math.floor(q * (delays.length - 1))]!.toFixed(0);
const frames = ticks * perTick;
process.stdout.write(
  `${frames} device frames at ${rate}/s (${fleetFrames} on *): toDevice → local delivery p50 ${at(0.5)} µs, p99 ${at(0.99)} µs, max ${at(1)} µs; ` +
    `CPU ${(((cpu.user + cpu.system) / frames)).toFixed(1)} µs per frame (${((cpu.user + cpu.system) / 1000 / seconds / 10).toFixed(1)} % of a core); delivered ${delays.length}, out of seq order ${outOfOrder}\n`,
);
await fanout.stop();
const keys = await bus.commands.keys(`${prefix}*`);
if (keys.length > 0) await bus.commands.del(...keys);
await bus.close();
