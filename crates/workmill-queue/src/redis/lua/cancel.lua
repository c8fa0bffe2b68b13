-- cancel: ARGV = prefix, retention bound, retention age, id, then the statuses a task may
-- be cancelled from. Returns 'ok', 'missing' or {'illegal', current status}.
local bound, age, id = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local cancellable = set_of(5, #ARGV)
local key = task_key(id)
local status = redis.call('HGET', key, 'status')
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
announce()
moved(status, 'cancelled')
retain(bound, age, now)
write_counts()
return 'ok'
