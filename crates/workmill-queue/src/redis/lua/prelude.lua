-- workmill: helpers shared by every script. This text is put in front of each script, so
-- that the scripts stay self-contained (EVALSHA needs no library loaded beforehand, and a
-- restarted server that lost its script cache gets the whole script again).
--
-- ARGV[1] is always the key prefix. Keys are built here from task ids, so the scripts
-- suit a standalone Redis (or one primary), not Redis Cluster; see README.md.

local P = ARGV[1]
local COUNTERS = P .. ':counters'
local READY = P .. ':ready'
local DELAYED = P .. ':delayed'
local LEASES = P .. ':leases'
local FINISHED = P .. ':finished'
local ALL = P .. ':all'
local WAKE = P .. ':wake'
-- At most this many wake-up tokens wait in the notification list.
local WAKE_CAP = 64
-- QueueKey::to_score: the priority above the low 36 bits, the arrival number below.
local SEQ_SPAN = 68719476736

local function task_key(id)
  return P .. ':task:' .. id
end

-- Numbers go to Redis as integer strings: Lua's own conversion would print large
-- integers (microsecond times) in exponent form and lose digits.
local function int(n)
  return string.format('%d', n)
end

-- The server's clock, so that every worker on every machine agrees on lease expiry.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function score(priority, seq)
  return tonumber(priority) * SEQ_SPAN + (tonumber(seq) % SEQ_SPAN)
end

-- Counter changes are summed in a table and written once per script.
local deltas = {}
local function count(field, by)
  deltas[field] = (deltas[field] or 0) + by
end
local function moved(from, to)
  count(from, -1)
  count(to, 1)
end
local function write_counts()
  for field, by in pairs(deltas) do
    if by ~= 0 then
      redis.call('HINCRBY', COUNTERS, field, by)
    end
  end
end

-- Wakes up to `n` workers blocked in BLPOP on the notification list.
local function wake(n)
  if n <= 0 then
    return
  end
  local tokens = {}
  for i = 1, math.min(n, WAKE_CAP) do
    tokens[i] = '1'
  end
  redis.call('LPUSH', WAKE, unpack(tokens))
  redis.call('LTRIM', WAKE, 0, WAKE_CAP - 1)
end

-- A task reached a final status at `now`: it joins the retention set, and anyone waiting
-- on it hears so.
local function finish(id, now, status)
  redis.call('ZADD', FINISHED, int(now), id)
  redis.call('PUBLISH', P .. ':done:' .. id, status)
end

-- Removes every trace of a task.
local function drop(id)
  redis.call('DEL', task_key(id))
  redis.call('ZREM', ALL, id)
  redis.call('ZREM', FINISHED, id)
  redis.call('ZREM', READY, id)
  redis.call('ZREM', DELAYED, id)
  redis.call('ZREM', LEASES, id)
end

-- Removes a finished record that its caller already took out of the retention set: a
-- finished task is in no other index, so two commands suffice.
local function evict(id)
  redis.call('DEL', task_key(id))
  redis.call('ZREM', ALL, id)
end

-- The retention bound: finished records older than `age` microseconds, then the oldest
-- beyond `bound` records, are dropped and counted as evicted. Their status gauges stay.
-- A negative bound or age means no such limit.
local function retain(bound, age, now)
  local evicted = 0
  if age >= 0 then
    local old = redis.call('ZRANGEBYSCORE', FINISHED, '-inf', '(' .. int(now - age), 'LIMIT', 0, 1000)
    if #old > 0 then
      redis.call('ZREM', FINISHED, unpack(old))
      for _, id in ipairs(old) do
        evict(id)
      end
      evicted = evicted + #old
    end
  end
  if bound >= 0 then
    local excess = redis.call('ZCARD', FINISHED) - bound
    if excess > 0 then
      local old = redis.call('ZPOPMIN', FINISHED, excess)
      for i = 1, #old, 2 do
        evict(old[i])
        evicted = evicted + 1
      end
    end
  end
  count('evicted', evicted)
end

-- A set from the ARGV entries first..last.
local function set_of(first, last)
  local s = {}
  for i = first, last do
    s[ARGV[i]] = true
  end
  return s
end

