-- cancel: ARGV = prefix, retention bound, retention age, id, then the statuses a task may
-- be cancelled from. Returns 'ok', 'missing' or {'illegal', current status}. Cancelling a
-- task of a job cancels the job (jobs.lua).
local bound, age, id = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local cancellable = set_of(5, #ARGV)
local key = task_key(id)
local f = redis.call('HMGET', key, 'status', 'job')
local status = f[1]
if not status then
  return 'missing'
elseif not cancellable[status] then
  return {'illegal', status}
end
local now = now_us()
redis.call('HSET', key, 'status', 'cancelled', 'finished_at', int(now))
redis.call('ZREM', READY, id)
redis.call('ZREM', DELAYED, id)
finish(id, now)
moved(status, 'cancelled')
if f[2] then
  job_task_cancelled(f[2], id, now)
end
announce()
retain(bound, age, now)
write_counts()
return 'ok'
