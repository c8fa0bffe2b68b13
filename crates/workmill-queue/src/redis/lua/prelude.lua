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

-- Map-reduce jobs (see jobs.lua). Each kind of key has its own word after the prefix, so no
-- id, whatever colons it holds, can make one kind's key equal another's.
local JOBS = P .. ':jobs'
local function job_key(id)
  return P .. ':job:' .. id
end
local function job_maps_key(id)
  return P .. ':job-maps:' .. id
end
local function job_results_key(id)
  return P .. ':job-results:' .. id
end
-- The reduce of a job still mapping, held back under its own id until the last map completes.
local function held_key(id)
  return P .. ':held:' .. id
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

-- Wakes up to `n` workers blocked in BLPOP on the notification list. A script pushes one
-- token per task it makes ready, and one more when it adds a delayed task (a delayed submit
-- or reduce, a retry in backoff): the worker it wakes finds nothing ready, and sleeps again
-- until the new first due time, which it could not know when it went to sleep.
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

-- Runs `cmd [first] items...` in slices: Lua's unpack takes a limited number of values.
-- The slice length is even, so score/member pairs stay whole.
local function bulk(cmd, first, items)
  local step = 1000
  for i = 1, #items, step do
    local last = math.min(i + step - 1, #items)
    if first then
      redis.call(cmd, first, unpack(items, i, last))
    else
      redis.call(cmd, unpack(items, i, last))
    end
  end
end

-- Tasks that reached a final status in this script. `announce` adds them to the retention
-- set and tells waiters, in one command each, before the retention bound is applied.
local finished_ids = {}
local finished_pairs = {}
local function finish(id, now)
  finished_ids[#finished_ids + 1] = id
  finished_pairs[#finished_pairs + 1] = int(now)
  finished_pairs[#finished_pairs + 1] = id
end
local function announce()
  if #finished_ids > 0 then
    bulk('ZADD', FINISHED, finished_pairs)
    redis.call('PUBLISH', P .. ':done', table.concat(finished_ids, '\n'))
  end
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

-- Removes finished records that their caller already took out of the retention set: a
-- finished task is in no other index, so its hash and its submission-order entry go.
local function evict(ids)
  if #ids == 0 then
    return
  end
  local keys = {}
  for i, id in ipairs(ids) do
    keys[i] = task_key(id)
  end
  bulk('DEL', nil, keys)
  bulk('ZREM', ALL, ids)
end

-- The retention bound: finished records older than `age` microseconds, then the oldest
-- beyond `bound` records, are dropped and counted as evicted, at most 1000 of each a script.
-- Their status gauges stay.
-- A negative bound or age means no such limit.
local function retain(bound, age, now)
  local evicted = 0
  if age >= 0 then
    local old = redis.call('ZRANGEBYSCORE', FINISHED, '-inf', '(' .. int(now - age), 'LIMIT', 0, 1000)
    if #old > 0 then
      bulk('ZREM', FINISHED, old)
      evict(old)
      evicted = evicted + #old
    end
  end
  if bound >= 0 then
    -- At most 1000 a script, as for the age: a bound lowered on a queue holding millions of
    -- finished records takes many scripts to reach, rather than blocking the server in one.
    local excess = math.min(redis.call('ZCARD', FINISHED) - bound, 1000)
    if excess > 0 then
      local popped = redis.call('ZPOPMIN', FINISHED, excess)
      local old = {}
      for i = 1, #popped, 2 do
        old[#old + 1] = popped[i]
      end
      evict(old)
      evicted = evicted + #old
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

