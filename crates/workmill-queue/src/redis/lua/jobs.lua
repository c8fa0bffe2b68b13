-- workmill: map-reduce job bookkeeping, put after prelude.lua in the scripts whose moves can
-- change a job (submit_job, complete, fail, cancel, requeue, purge). The rules are those on
-- `Queue` in workmill-core, under "Jobs"; README.md says how the keys hold them. Each
-- function runs inside the script that moves the task, so a job changes atomically with
-- its tasks. A task's hash names its job in its `job` field.

-- The phase in which a job listens to `task`: 'reducing' for its reduce, 'mapping' for a map.
local function phase_of(task, reduce)
  if task == reduce then
    return 'reducing'
  end
  return 'mapping'
end

-- Ends job `job` (whose reduce is `reduce`) with status `to`, 'failed' or 'cancelled', and
-- for a failed job the task that failed it and why; drops its held-back reduce; cancels its
-- waiting tasks, except those whose status is in the set `spare` (which a purge is about to
-- delete). Pending and retrying are the statuses the transition table lets become cancelled
-- (a Rust test keeps this list and the table in step).
local function end_job(job, reduce, to, failed_task, kind, message, now, spare)
  local key = job_key(job)
  redis.call('HSET', key, 'status', to, 'finished_at', int(now))
  if failed_task then
    redis.call('HSET', key, 'failed_task', failed_task, 'failure_kind', kind,
      'failure_message', message)
  end
  redis.call('DEL', held_key(reduce))
  local tasks = redis.call('LRANGE', job_maps_key(job), 0, -1)
  tasks[#tasks + 1] = reduce
  for _, id in ipairs(tasks) do
    local tkey = task_key(id)
    local f = redis.call('HMGET', tkey, 'status', 'job')
    local status = f[1]
    -- A stored task of that id that names another job (or none) is not this job's any more.
    if f[2] == job and (status == 'pending' or status == 'retrying') and not spare[status] then
      redis.call('HSET', tkey, 'status', 'cancelled', 'finished_at', int(now))
      redis.call('ZREM', READY, id)
      redis.call('ZREM', DELAYED, id)
      finish(id, now)
      moved(status, 'cancelled')
    end
  end
end

-- Copies the held-back reduce of a job whose last map just completed into a task (a new
-- arrival number, due no earlier than now) and makes the job reducing. Should it be
-- impossible (only a hand edit can remove the held record or take its id), the job fails
-- with the reason instead of waiting forever.
local function start_reduce(job, reduce, now)
  local hkey = held_key(reduce)
  local h = redis.call('HMGET', hkey, 'name', 'payload', 'checksum', 'priority', 'retry', 'run_at')
  redis.call('DEL', hkey)
  redis.call('HSET', job_key(job), 'status', 'reducing')
  local why = nil
  if not h[1] then
    why = 'its held-back record is missing'
  elseif redis.call('EXISTS', task_key(reduce)) == 1 then
    why = 'a task ' .. reduce .. ' exists already'
  end
  if why then
    end_job(job, reduce, 'failed', reduce, 'permanent',
      'the reduce could not be enqueued: ' .. why, now, {})
    return
  end
  local seq = redis.call('HINCRBY', COUNTERS, 'seq', 1)
  local at = now
  if h[6] and h[6] ~= '' then
    at = math.max(tonumber(h[6]), now)
  end
  redis.call('HSET', task_key(reduce), 'name', h[1], 'payload', h[2], 'checksum', h[3],
    'status', 'pending', 'priority', h[4], 'seq', int(seq), 'attempts', '0', 'retry', h[5],
    'created_at', int(now), 'run_at', int(at), 'job', job)
  if at <= now then
    redis.call('ZADD', READY, score(h[4], seq), reduce)
  else
    redis.call('ZADD', DELAYED, int(at), reduce)
  end
  -- Ready, a worker takes it; delayed, a sleeping worker learns the new first due time.
  wake(1)
  redis.call('ZADD', ALL, int(seq), reduce)
  count('submitted', 1)
  count('pending', 1)
end

-- Task `id` of job `job` just completed with `result`: a map of a job still mapping stores
-- its result once (HSETNX) and counts; the last one enqueues the reduce. The reduce of a
-- job reducing completes the job. Tasks of a finished job are plain tasks.
local function job_task_completed(job, id, result, now)
  local key = job_key(job)
  local f = redis.call('HMGET', key, 'status', 'reduce', 'maps_total')
  local status, reduce = f[1], f[2]
  if not status then
    return
  end
  local phase = phase_of(id, reduce)
  if status == 'mapping' and phase == 'mapping' then
    if redis.call('HSETNX', job_results_key(job), id, result) == 1 then
      local done = redis.call('HINCRBY', key, 'maps_done', 1)
      if done == tonumber(f[3]) then
        start_reduce(job, reduce, now)
      end
    end
  elseif status == 'reducing' and phase == 'reducing' then
    redis.call('HSET', key, 'status', 'completed', 'finished_at', int(now))
  end
end

-- Task `id` of job `job` just ended dead with a failure of `kind`: the job fails, if it was
-- in that task's phase.
local function job_task_dead(job, id, kind, message, now)
  local f = redis.call('HMGET', job_key(job), 'status', 'reduce')
  if f[1] and f[1] == phase_of(id, f[2]) then
    end_job(job, f[2], 'failed', id, kind, message, now, {})
  end
end

-- Task `id` of job `job` was just cancelled: the job is cancelled, if it was in that phase.
local function job_task_cancelled(job, id, now)
  local f = redis.call('HMGET', job_key(job), 'status', 'reduce')
  if f[1] and f[1] == phase_of(id, f[2]) then
    end_job(job, f[2], 'cancelled', nil, nil, nil, now, {})
  end
end

-- Dead task `id` of job `job` was just requeued: if it is the reduce that failed the job,
-- the job is reducing again (every map result is still there).
local function job_task_requeued(job, id)
  local key = job_key(job)
  local f = redis.call('HMGET', key, 'status', 'reduce', 'failed_task')
  if f[1] == 'failed' and f[2] == id and f[3] == id then
    redis.call('HSET', key, 'status', 'reducing')
    redis.call('HDEL', key, 'failed_task', 'failure_kind', 'failure_message', 'finished_at')
  end
end

-- Removes job `job` and its results; its tasks still stored become plain tasks.
local function remove_job(job)
  local key = job_key(job)
  local reduce = redis.call('HGET', key, 'reduce')
  local tasks = redis.call('LRANGE', job_maps_key(job), 0, -1)
  if reduce then
    tasks[#tasks + 1] = reduce
    redis.call('DEL', held_key(reduce))
  end
  for _, id in ipairs(tasks) do
    local tkey = task_key(id)
    if redis.call('HGET', tkey, 'job') == job then
      redis.call('HDEL', tkey, 'job')
    end
  end
  redis.call('DEL', key, job_maps_key(job), job_results_key(job))
  redis.call('ZREM', JOBS, job)
end
