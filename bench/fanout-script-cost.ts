/**
 * What fleet numbering and the time-window history cost in Redis, per frame, and what delivering
 * a frame to local clients only once Redis stored it costs in latency (docs/scaling.md).
 *
 *   node --import tsx bench/fanout-script-cost.ts [redis-url]
 *
 * Runs the fan-out Lua script of 4e042dd (before: `*` frames only published, a 32-frame LTRIM
 * history per device) and today's (fleet_seq INCR + splice + fleet window; time and byte window per
 * device) on batches of 100 frames with one subscriber per channel (so histories are kept), and
 * reads the Redis-side time per call from INFO commandstats. Then measures, through the real
 * Redis fan-out, the delay from toDevice to local delivery.
 */
import { Redis } from 'ioredis';
import { RedisBus } from '../src/cluster/redis-bus.js';
import { Faults } from '../src/errors/boundary.js';
import { FANOUT_FRAMES } from '../src/fanout/redis-fanout-script.js';
import { createRedisFanout } from '../src/fanout/redis-fanout.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';

const BEFORE = `
local prefix, me, size, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local seqKey = prefix .. 'fanout:seq'
local stale = {}
for i = 5, #ARGV, 4 do
  local channel, seq, key, frame = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local envelope = me .. '|' .. seq .. '|' .. key .. '|' .. frame
  if channel == '*' then
    redis.call('PUBLISH', prefix .. 'ch:*', envelope)
  else
    local stored = tonumber(redis.call('HGET', seqKey, channel) or '0')
    if tonumber(seq) <= stored then
      stale[#stale + 1] = channel
      stale[#stale + 1] = tostring(stored)
    else
      redis.call('HSET', seqKey, channel, seq)
      local receivers = redis.call('PUBLISH', prefix .. 'ch:' .. channel, envelope)
      if size > 0 then
        local hist = prefix .. 'hist:' .. channel
        local kept = redis.call('EXISTS', hist) == 1
        if receivers > 0 or kept then
          redis.call('RPUSH', hist, seq .. '|' .. frame)
          redis.call('LTRIM', hist, -size, -1)
          if receivers > 0 then redis.call('PEXPIRE', hist, ttl) end
        end
      end
    end
  end
end
return stale
`;

const url = process.argv[2] ?? 'redis://127.0.0.1:6379';
const CALLS = 300;
const BATCH = 100;
const pad = 'x'.repeat(220);
const frame = (kind: string, i: number) => `{"type":"${kind}","device_id":"bench-${i % 50}","seq":${i},"score":87.5,"pad":"${pad}"}`;

async function evalUsec(redis: Redis): Promise<{ calls: number; usec: number }> {
  const info = await redis.info('commandstats');
  const line = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(info);
  return { calls: Number(line?.[1] ?? 0), usec: Number(line?.[2] ?? 0) };
}

async function scriptCost(label: string, script: string, args: (prefix: string, batch: (string | number)[]) => (string | number)[], channel: (i: number) => string): Promise<number> {
  const redis = new Redis(url);
  const sub = new Redis(url);
  const prefix = `vigil-bench:${Math.random().toString(36).slice(2)}:`;
  await sub.psubscribe(`${prefix}ch:*`); // one receiver per channel: histories are kept
  const sha = (await redis.script('LOAD', script)) as string;
  const samples: number[] = [];
  for (let round = 0; round < 3; round++) {
    const before = await evalUsec(redis);
    for (let c = 0; c < CALLS; c++) {
      const batch: (string | number)[] = [];
      for (let j = 0; j < BATCH; j++) {
        const i = c * BATCH + j + round * CALLS * BATCH;
        batch.push(channel(i), i + 1, 'h', frame('health_score', i));
      }
      await redis.evalsha(sha, 0, ...args(prefix, batch));
    }
    const after = await evalUsec(redis);
    samples.push((after.usec - before.usec) / ((after.calls - before.calls) * BATCH));
  }
  samples.sort((x, y) => x - y);
  const median = samples[1]!;
  process.stdout.write(`${label}: ${median.toFixed(2)} µs of Redis time per frame (median of 3 × ${CALLS} calls of ${BATCH}; ${samples.map((s) => s.toFixed(2)).join(' / ')})\n`);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await Promise.all([redis.quit(), sub.quit()]);
  return median;
}

const now = Date.now();
const oldArgs = (prefix: string, batch: (string | number)[]) => [prefix, 'bench', 32, 300_000, ...batch];
const newArgs = (prefix: string, batch: (string | number)[]) => [prefix, 'bench', 120_000, 65_536, 300_000, now, 120_000, 8 << 20, ...batch];
const fleetBefore = await scriptCost('* frames, before (publish only)', BEFORE, oldArgs, () => '*');
const fleetNow = await scriptCost('* frames, now (fleet_seq + fleet window)', FANOUT_FRAMES, newArgs, () => '*');
const noFleetWindow = (prefix: string, batch: (string | number)[]) => [prefix, 'bench', 120_000, 65_536, 300_000, now, 0, 8 << 20, ...batch];
await scriptCost('* frames, now, FLEET_HISTORY_WINDOW_S=0 (fleet_seq only)', FANOUT_FRAMES, noFleetWindow, () => '*');
const deviceBefore = await scriptCost('device frames, before (32-frame history)', BEFORE, oldArgs, (i) => `bench-${i % 50}`);
const deviceNow = await scriptCost('device frames, now (time + byte window)', FANOUT_FRAMES, newArgs, (i) => `bench-${i % 50}`);
process.stdout.write(`fleet numbering: +${(fleetNow - fleetBefore).toFixed(2)} µs per * frame; device window: ${deviceNow - deviceBefore >= 0 ? '+' : ''}${(deviceNow - deviceBefore).toFixed(2)} µs per device frame\n`);

// Local delivery after the write: toDevice → this instance's client.
const log = createLogger('error', { write: () => undefined });
const metrics = createMetrics();
const faults = new Faults(log, metrics);
const bus = new RedisBus(url, log, faults);
await bus.connect();
const fanout = await createRedisFanout({ bus, keyPrefix: `vigil-bench:${Math.random().toString(36).slice(2)}:`, instanceId: 'bench', windowMs: 120_000, maxBytesPerDevice: 65_536, ttlMs: 60_000, fleetWindowMs: 120_000, fleetMaxBytes: 8 << 20, log, metrics, faults });
const delays: number[] = [];
let sentAt = 0;
await fanout.start({ toDevice: () => void delays.push(Number(process.hrtime.bigint() - BigInt(sentAt)) / 1000), toAll: () => undefined });
await fanout.follow('d1');
for (let seq = 1; seq <= 2000; seq++) {
  sentAt = Number(process.hrtime.bigint());
  fanout.toDevice('d1', seq, frame('device_update', seq), 'u');
  await fanout.settled();
}
delays.sort((x, y) => x - y);
const at = (q: number) => delays[Math.floor(q * (delays.length - 1))]!.toFixed(0);
process.stdout.write(`local delivery after the Redis write: p50 ${at(0.5)} µs, p99 ${at(0.99)} µs, max ${at(1)} µs over ${delays.length} frames (before: 0, delivered synchronously)\n`);
await fanout.stop();
await bus.close();
