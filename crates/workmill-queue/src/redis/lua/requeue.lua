-- requeue: ARGV = prefix, id, then the statuses an operator may requeue from. Gives the task
-- a fresh set of attempts, due now, behind the tasks waiting at its priority.
-- Returns 'ok', 'missing' or {'illegal', current status}. Requeueing the dead reduce that
-- failed its job makes the job reducing again (jobs.lua).
local id = ARGV[2]
local requeueable = set_of(3, #ARGV)
local key = task_key(id)
local f = redis.call('HMGET', key, 'status', 'priority', 'job')
if not f[1] then
  return 'missing'
elseif not requeueable[f[1]] then
  return {'illegal', f[1]}
end
local now = now_us()
local seq = redis.call('HINCRBY', COUNTERS, 'seq', 1)
redis.call('HSET', key, 'status', 'pending', 'attempts', '0', 'run_at', int(now), 'seq', int(seq))
redis.call('HDEL', key, 'finished_at', 'token', 'lease_expires_at')
redis.call('ZREM', FINISHED, id)
redis.call('ZADD', READY, score(f[2], seq), id)
moved(f[1], 'pending')
if f[3] then
  job_task_requeued(f[3], id)
end
write_counts()
wake(1)
return 'ok'
