-- submit_job: ARGV = prefix, job id, map count, the reduce's fields (id, name, payload,
-- checksum, priority, retry policy, run_at or ''), then the maps' fields, seven each in the
-- same order. Enqueues the maps, holds back the reduce and records the job, or refuses all
-- of it: returns 'ok', 'duplicate_job', or {'duplicate', id} for a map or reduce id that
-- is stored, held back by another job, or repeated.
local job, n = ARGV[2], tonumber(ARGV[3])
local R = 4
local FIRST_MAP = R + 7
if redis.call('EXISTS', job_key(job)) == 1 then
  return 'duplicate_job'
end
local reduce = ARGV[R]
if redis.call('EXISTS', task_key(reduce), held_key(reduce)) > 0 then
  return {'duplicate', reduce}
end
for i = 0, n - 1 do
  if ARGV[FIRST_MAP + i * 7] == reduce then
    return {'duplicate', reduce}
  end
end
local taken, now = add_tasks(FIRST_MAP, n, job)
if taken then
  return {'duplicate', taken}
end
local maps = {}
for i = 0, n - 1 do
  maps[i + 1] = ARGV[FIRST_MAP + i * 7]
end
bulk('RPUSH', job_maps_key(job), maps)
redis.call('HSET', held_key(reduce), 'job', job, 'name', ARGV[R + 1], 'payload', ARGV[R + 2],
  'checksum', ARGV[R + 3], 'priority', ARGV[R + 4], 'retry', ARGV[R + 5], 'run_at', ARGV[R + 6])
redis.call('HSET', job_key(job), 'status', 'mapping', 'maps_total', int(n), 'maps_done', '0',
  'reduce', reduce, 'created_at', int(now))
redis.call('ZADD', JOBS, int(now), job)
write_counts()
return 'ok'
