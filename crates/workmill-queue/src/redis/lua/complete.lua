-- complete: ARGV = prefix, retention bound, retention age (-1 for none), then per task:
-- id, token, result. Returns one entry per task: 'ok', 'lost' (not running under that
-- token) or 'missing' (no such task).
local bound, age = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_us()
local out = {}
local done = 0
for i = 4, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  local key = task_key(id)
  local f = redis.call('HMGET', key, 'status', 'token')
  if not f[1] then
    out[#out + 1] = 'missing'
  elseif f[1] ~= 'running' or f[2] ~= token then
    out[#out + 1] = 'lost'
  else
    redis.call('HSET', key, 'status', 'completed', 'finished_at', int(now), 'result', ARGV[i + 2])
    redis.call('HDEL', key, 'token', 'lease_expires_at')
    redis.call('ZREM', LEASES, id)
    finish(id, now, 'completed')
    done = done + 1
    out[#out + 1] = 'ok'
  end
end
count('running', -done)
count('completed', done)
retain(bound, age, now)
write_counts()
return out
