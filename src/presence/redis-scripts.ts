/**
 * Lua for the Redis presence store. Every script takes the same KEYS:
 *   1 deadlines (zset id → deadline ms)   2 last seen (hash id → ms)   3 statuses (hash id → online|offline)
 *   4 per-device key prefix (`prefix .. id`, SET … PX)   5 transitions channel (PUBLISH)
 * Each runs atomically, so a claim (ZREM or the status hash flip) happens exactly once per
 * transition, whichever path or hub gets there first, and the winner announces it to the others in
 * the same step: "hub|id|status|reason|at|lastSeen".
 */

/** ARGV: now, then (id, lastSeen, deadline) triples. Writes each device's key, deadline and last seen. */
export const TOUCH_MANY = `
local now = tonumber(ARGV[1])
for i = 2, #ARGV, 3 do
  local id, seen, deadline = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local ttl = math.max(1, math.floor(deadline - now))
  redis.call('SET', KEYS[4] .. id, seen, 'PX', ttl)
  redis.call('ZADD', KEYS[1], deadline, id)
  redis.call('HSET', KEYS[2], id, seen)
end
return 1
`;

const CLAIM_EXPIRY = `
-- An expiry claimed long after its deadline was not seen live (no hub was sweeping): 'reconcile'.
local function claim(id, deadline, now, hub, lateMs)
  if redis.call('ZREM', KEYS[1], id) == 0 then return nil end
  local reason = 'timeout'
  if tonumber(now) - tonumber(deadline) > tonumber(lateMs) then reason = 'reconcile' end
  local seen = redis.call('HGET', KEYS[2], id) or deadline
  redis.call('HDEL', KEYS[2], id)
  redis.call('DEL', KEYS[4] .. id)
  redis.call('HSET', KEYS[3], id, 'offline')
  redis.call('PUBLISH', KEYS[5], hub .. '|' .. id .. '|offline|' .. reason .. '|' .. now .. '|' .. seen)
  return seen
end
`;

/** ARGV: now, limit, hub, lateMs. Claims up to `limit` devices whose deadline passed; returns id, lastSeen, deadline triples. */
export const CLAIM_DUE = `${CLAIM_EXPIRY}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #due, 2 do
  local seen = claim(due[i], due[i + 1], ARGV[1], ARGV[3], ARGV[4])
  if seen then
    out[#out + 1] = due[i]
    out[#out + 1] = seen
    out[#out + 1] = due[i + 1]
  end
end
return out
`;

/**
 * ARGV: id, now, hub, lateMs. On an expired event: claims the device if its key is really gone and its
 * deadline is still registered (and due); returns {lastSeen, deadline} or nil.
 */
export const CLAIM_ONE = `${CLAIM_EXPIRY}
local id = ARGV[1]
if redis.call('EXISTS', KEYS[4] .. id) == 1 then return nil end
local deadline = redis.call('ZSCORE', KEYS[1], id)
if not deadline or tonumber(deadline) > tonumber(ARGV[2]) + 1000 then return nil end
local seen = claim(id, deadline, ARGV[2], ARGV[3], ARGV[4])
if not seen then return nil end
return {seen, deadline}
`;

/**
 * ARGV: hub, then (id, status, reason, at, lastSeen ('' when unknown)) per change, in order. Claims
 * each change to online, or to offline (Last Will, reconcile: the device's presence is dropped too).
 * Returns one flag per change: 1 where this hub won it. One call carries every change a hub made in
 * an event-loop turn (redis-claim-queue.ts): a fleet coming online at once made one call per device,
 * a quarter of the hub's time in socket writes at 1,000,000 devices (#21).
 */
export const CLAIM_TRANSITIONS = `
local hub = ARGV[1]
local won = {}
for i = 2, #ARGV, 5 do
  local id, status = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[3], id) == status then
    won[#won + 1] = 0
  else
    redis.call('HSET', KEYS[3], id, status)
    if status == 'offline' then
      redis.call('ZREM', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
      redis.call('DEL', KEYS[4] .. id)
    end
    redis.call('PUBLISH', KEYS[5], hub .. '|' .. id .. '|' .. status .. '|' .. ARGV[i + 2] .. '|' .. ARGV[i + 3] .. '|' .. ARGV[i + 4])
    won[#won + 1] = 1
  end
end
return won
`;
