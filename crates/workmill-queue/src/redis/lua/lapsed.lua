-- lapsed: ARGV = prefix, limit. Reads (and changes nothing about) up to `limit` running
-- tasks whose lease expired, so the caller can decide each one's retry with
-- RetryPolicy::decide and apply it with fail.lua. Returns per task: id, token, attempts,
-- priority, retry policy, worker.
local now = now_us()
local ids = redis.call('ZRANGEBYSCORE', LEASES, '-inf', int(now), 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', task_key(id), 'status', 'token', 'attempts', 'priority', 'retry', 'worker')
  if f[1] == 'running' then
    local n = #out
    out[n + 1] = id
    out[n + 2] = f[2] or ''
    out[n + 3] = f[3] or ''
    out[n + 4] = f[4] or ''
    out[n + 5] = f[5] or ''
    out[n + 6] = f[6] or ''
  else
    -- The task finished or vanished without its lease entry going: tidy it away.
    redis.call('ZREM', LEASES, id)
  end
end
return out
