/**
 * Appends an entry (`seq|at|frame`) to a channel's history list while anyone follows the channel
 * (`receivers`) or the list is still kept (until its TTL, which only a follower renews), then drops
 * entries older than the window and, oldest first, while the list holds more than its byte cap.
 * The list's byte total lives beside it (`…bytes`, same TTL): the kept marker. `out[slot]` and
 * `out[slot + 1]` count entries dropped by window and by bytes. Per call, each list's byte total,
 * head and TTL are read once and written once (`finish`): a batch touching one list many times
 * (the fleet feed) pays them once, not per frame.
 */
const KEEP = `
local lists, touched = {}, {}
local function keep(hist, bytesKey, entry, windowMs, maxBytes, receivers, slot)
  if windowMs <= 0 then return end
  local st = lists[hist]
  if not st then
    local bytes = redis.call('GET', bytesKey)
    if bytes then
      bytes = tonumber(bytes)
    else
      if receivers == 0 then return end
      redis.call('DEL', hist)
      bytes = 0
    end
    st = { bytes = bytes, key = bytesKey, live = false, headAt = false, headLen = 0 }
    lists[hist] = st
    touched[#touched + 1] = hist
  end
  if receivers > 0 then st.live = true end
  redis.call('RPUSH', hist, entry)
  st.bytes = st.bytes + #entry
  local oldest = now - windowMs
  while true do
    if not st.headAt then
      local head = redis.call('LINDEX', hist, 0)
      if not head then break end
      local a = string.find(head, '|', 1, true)
      local b = string.find(head, '|', a + 1, true)
      st.headAt = tonumber(string.sub(head, a + 1, b - 1))
      st.headLen = #head
    end
    local old = st.headAt < oldest
    if not old and st.bytes <= maxBytes then break end
    redis.call('LPOP', hist)
    st.bytes = st.bytes - st.headLen
    st.headAt = false
    if old then out[slot] = out[slot] + 1 else out[slot + 1] = out[slot + 1] + 1 end
  end
end
local function finish()
  for _, hist in ipairs(touched) do
    local st = lists[hist]
    if st.live then
      redis.call('SET', st.key, st.bytes, 'PX', ttl)
      redis.call('PEXPIRE', hist, ttl)
    else
      redis.call('SET', st.key, st.bytes, 'KEEPTTL')
      local left = redis.call('PTTL', st.key)
      if left > 0 then redis.call('PEXPIRE', hist, left) end
    end
  end
end
`;

/**
 * One call per batch of frames. For each device frame: fence by seq (a frame numbered at or below
 * the device's stored seq comes from an instance that no longer owns it, and is returned instead of
 * published), store the seq, PUBLISH `instance|seq|key|frame` on the device channel, and keep it in
 * the device's time window. Each `*` frame gets the next fleet_seq (INCR: one numbering for the
 * whole cluster), spliced in after its first field exactly as withFleetSeq (fanout.ts) does, is
 * published as `instance|fleet_seq|key|frame` and kept in the fleet window.
 * ARGV: prefix, instance, window ms, max bytes per device, ttl ms, now ms, fleet window ms, fleet
 * max bytes, then (channel, seq, key, frame) per frame.
 * Returns: first fleet_seq given in this call (0: none), dropped device entries by window, by
 * bytes, dropped fleet entries by window, by bytes, then (index of the frame in this call, stored
 * seq) per fenced frame.
 */
export const FANOUT_FRAMES = `
local prefix, me = ARGV[1], ARGV[2]
local window, maxBytes, ttl, now = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local fleetWindow, fleetMax = tonumber(ARGV[7]), tonumber(ARGV[8])
local seqKey = prefix .. 'fanout:seq'
local out = {0, 0, 0, 0, 0}
${KEEP}
-- One INCRBY numbers every * frame of the call: they take consecutive fleet_seqs.
local fleetFrames = 0
for i = 9, #ARGV, 4 do
  if ARGV[i] == '*' then fleetFrames = fleetFrames + 1 end
end
local n = 0
if fleetFrames > 0 then
  n = redis.call('INCRBY', prefix .. 'fleet:seq', fleetFrames) - fleetFrames
  out[1] = n + 1
end
for i = 9, #ARGV, 4 do
  local channel, seq, key, frame = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if channel == '*' then
    n = n + 1
    local comma = string.find(frame, ',', 1, true)
    if comma then frame = string.sub(frame, 1, comma - 1) .. ',"fleet_seq":' .. n .. string.sub(frame, comma) end
    local receivers = redis.call('PUBLISH', prefix .. 'ch:*', me .. '|' .. n .. '|' .. key .. '|' .. frame)
    keep(prefix .. 'fleet:hist', prefix .. 'fleet:hbytes', n .. '|' .. now .. '|' .. frame, fleetWindow, fleetMax, receivers, 4)
  else
    local stored = tonumber(redis.call('HGET', seqKey, channel) or '0')
    if tonumber(seq) <= stored then
      out[#out + 1] = (i - 9) / 4
      out[#out + 1] = tostring(stored)
    else
      redis.call('HSET', seqKey, channel, seq)
      local receivers = redis.call('PUBLISH', prefix .. 'ch:' .. channel, me .. '|' .. seq .. '|' .. key .. '|' .. frame)
      keep(prefix .. 'hist:' .. channel, prefix .. 'hbytes:' .. channel, seq .. '|' .. now .. '|' .. frame, window, maxBytes, receivers, 2)
    end
  end
end
finish()
return out
`;

/**
 * The fleet feed's head and, when ARGV[2] (since) is not negative, the entries after it:
 * {head} | {head, 0} (not kept) | {head, 1, {entries…}}. Kept entries are consecutive (every `*`
 * frame is appended while the list exists), so the wanted ones start at since + 1 - first.
 * ARGV: prefix, since.
 */
export const FLEET_RECOVER = `
local prefix, since = ARGV[1], tonumber(ARGV[2])
local head = tonumber(redis.call('GET', prefix .. 'fleet:seq') or '0')
if since < 0 then return {head} end
if since == head then return {head, 1, {}} end
if since > head then return {head, 0} end
local hist = prefix .. 'fleet:hist'
local first = redis.call('LINDEX', hist, 0)
if not first then return {head, 0} end
local firstSeq = tonumber(string.sub(first, 1, string.find(first, '|', 1, true) - 1))
if firstSeq > since + 1 then return {head, 0} end
return {head, 1, redis.call('LRANGE', hist, since + 1 - firstSeq, -1)}
`;
