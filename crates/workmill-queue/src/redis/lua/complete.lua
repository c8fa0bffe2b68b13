-- complete: ARGV = prefix, retention bound, retention age (-1 for none), then per task:
-- id, token, result. Returns one entry per task: 'ok', 'lost' (not running under that
-- token) or 'missing' (no such task). The hash keeps its last `token` and
-- `lease_expires_at` as history; they mean something only while the task is running.
-- A task of a job keeps its job's books as it completes (jobs.lua), in this same script.
local bound, age = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_us()
local out = {}
local done = 0
local released = {}
for i = 4, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  local key = task_key(id)
  local f = redis.call('HMGET', key, 'status', 'token', 'job')
  if not f[1] then
    out[#out + 1] = 'missing'
  elseif f[1] ~= 'running' or f[2] ~= token then
    out[#out + 1] = 'lost'
  else
    redis.call('HSET', key, 'status', 'completed', 'finished_at', int(now), 'result', ARGV[i + 2])
    released[#released + 1] = id
    finish(id, now)
    done = done + 1
    out[#out + 1] = 'ok'
    if f[3] then
      job_task_completed(f[3], id, ARGV[i + 2], now)
    end
  end
end
bulk('ZREM', LEASES, released)
announce()
count('running', -done)
count('completed', done)
retain(bound, age, now)
write_counts()
return out
