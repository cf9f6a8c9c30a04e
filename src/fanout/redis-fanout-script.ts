/**
 * One call per batch of frames. For each device frame: fence by seq (a frame numbered at or below
 * the device's stored seq comes from an instance that no longer owns it, and is returned instead of
 * published), store the seq, PUBLISH `instance|seq|key|frame` on the device channel, and append to
 * the device's history while anyone follows it (and, without renewing its TTL, until it expires).
 * `*` frames are only published.
 * ARGV: prefix, instance, history size, history ttl ms, then (channel, seq, key, frame) per frame.
 * Returns the fenced frames as a flat list of (device, stored seq).
 */
export const FANOUT_FRAMES = `
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
