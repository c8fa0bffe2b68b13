-- reserve: ARGV = prefix, worker, max, lease (microseconds), then the statuses a task may
-- be reserved from (the transition table's answer, passed in by the caller).
-- Returns {lapsed leases seen, lease expiry, then per task: id, token, name, payload,
-- priority, attempts, retry policy, checksum}.
local worker, max, lease = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local reservable = set_of(5, #ARGV)
local now = now_us()

-- Delayed tasks (and retries) that came due move to the ready set, at their queue score.
local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', int(now), 'LIMIT', 0, 10000)
for _, id in ipairs(due) do
  local f = redis.call('HMGET', task_key(id), 'priority', 'seq')
  if f[1] then
    redis.call('ZADD', READY, score(f[1], f[2]), id)
  end
  redis.call('ZREM', DELAYED, id)
end

local lapsed = redis.call('ZCOUNT', LEASES, '-inf', int(now))
local expires = now + lease
local out = {int(lapsed), int(expires)}
if max <= 0 then
  return out
end
local popped = redis.call('ZPOPMIN', READY, max)
-- Promoted tasks this call leaves ready are for other workers: a token for each.
if #due > 0 then
  wake(math.min(#due, redis.call('ZCARD', READY)))
end
if #popped == 0 then
  return out
end
local token = redis.call('HINCRBY', COUNTERS, 'token', int(#popped / 2)) - #popped / 2
local leased = {}
for i = 1, #popped, 2 do
  local id = popped[i]
  local key = task_key(id)
  local f = redis.call('HMGET', key, 'status', 'name', 'payload', 'priority', 'attempts', 'retry', 'checksum')
  -- An entry whose task is gone or no longer waiting is stale; popping it was its removal.
  if f[1] and reservable[f[1]] then
    token = token + 1
    local attempts = (tonumber(f[5]) or 0) + 1
    redis.call('HSET', key, 'status', 'running', 'attempts', int(attempts),
      'started_at', int(now), 'worker', worker, 'token', int(token),
      'lease_expires_at', int(expires))
    leased[#leased + 1] = int(expires)
    leased[#leased + 1] = id
    moved(f[1], 'running')
    local n = #out
    out[n + 1] = id
    out[n + 2] = int(token)
    out[n + 3] = f[2] or ''
    out[n + 4] = f[3] or ''
    out[n + 5] = f[4] or ''
    out[n + 6] = int(attempts)
    out[n + 7] = f[6] or ''
    out[n + 8] = f[7] or ''
  end
end
bulk('ZADD', LEASES, leased)
write_counts()
return out
