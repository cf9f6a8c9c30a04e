/**
 * Lua for the Redis presence store. KEYS: 1 = deadlines zset, 2 = last-seen hash, 3 = key prefix
 * (per-device keys are `prefix .. id`). Each runs atomically, so a claim (ZREM returning 1) happens
 * exactly once per expiry whichever path or hub gets there first.
 */

/** ARGV: now, then (id, lastSeen, deadline) triples. Writes each device's key, deadline and last seen. */
export const TOUCH_MANY = `
local now = tonumber(ARGV[1])
for i = 2, #ARGV, 3 do
  local id, seen, deadline = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local ttl = math.max(1, math.floor(deadline - now))
  redis.call('SET', KEYS[3] .. id, seen, 'PX', ttl)
  redis.call('ZADD', KEYS[1], deadline, id)
  redis.call('HSET', KEYS[2], id, seen)
end
return 1
`;

/** ARGV: now, limit. Claims up to `limit` devices whose deadline passed; returns id, lastSeen, deadline triples. */
export const CLAIM_DUE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #due, 2 do
  local id = due[i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local seen = redis.call('HGET', KEYS[2], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('DEL', KEYS[3] .. id)
    out[#out + 1] = id
    out[#out + 1] = seen or due[i + 1]
    out[#out + 1] = due[i + 1]
  end
end
return out
`;

/**
 * ARGV: id, now. Called on an expired event: claims the device if its key is really gone and its
 * deadline is still registered; returns {lastSeen, deadline} or nil.
 */
export const CLAIM_ONE = `
local id = ARGV[1]
if redis.call('EXISTS', KEYS[3] .. id) == 1 then return nil end
local deadline = redis.call('ZSCORE', KEYS[1], id)
if not deadline then return nil end
if tonumber(deadline) > tonumber(ARGV[2]) + 1000 then return nil end
redis.call('ZREM', KEYS[1], id)
local seen = redis.call('HGET', KEYS[2], id)
redis.call('HDEL', KEYS[2], id)
return {seen or deadline, deadline}
`;
