-- purge: ARGV = prefix, retention bound, retention age, then the statuses to purge. Deletes
-- those tasks as if they had never been submitted, records dropped by the retention bound
-- included (they live on only in the gauges). Returns how many tasks went.
--
-- Jobs first: a job still mapping or reducing that is about to lose a waiting or running
-- task is cancelled (its other waiting tasks with it, unless they are purged anyway); after
-- the sweep, the jobs that a purged status ended are removed with their results.
local bound, age = tonumber(ARGV[2]), tonumber(ARGV[3])
local targets = set_of(4, #ARGV)
local now = now_us()

local losing = {}
local function find_losing(index)
  for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    local f = redis.call('HMGET', task_key(id), 'status', 'job')
    if f[1] and targets[f[1]] and f[2] then
      losing[f[2]] = true
    end
  end
end
-- A queue that never held a job skips the walk.
local any_jobs = redis.call('EXISTS', JOBS) == 1
if any_jobs and (targets['pending'] or targets['retrying']) then
  find_losing(READY)
  find_losing(DELAYED)
end
if any_jobs and targets['running'] then
  find_losing(LEASES)
end
for job, _ in pairs(losing) do
  local f = redis.call('HMGET', job_key(job), 'status', 'reduce')
  if f[1] == 'mapping' or f[1] == 'reducing' then
    end_job(job, f[2], 'cancelled', nil, nil, nil, now, targets)
  end
end
-- The tasks those cancels finished join the retention set before it is swept.
announce()

local deleted = {}
local function sweep(index)
  for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    local status = redis.call('HGET', task_key(id), 'status')
    if status and targets[status] then
      drop(id)
      deleted[status] = (deleted[status] or 0) + 1
    end
  end
end
if targets['pending'] or targets['retrying'] then
  sweep(READY)
  sweep(DELAYED)
end
if targets['running'] then
  sweep(LEASES)
end
if targets['completed'] or targets['dead'] or targets['cancelled'] then
  sweep(FINISHED)
end
local purged = 0
for status, _ in pairs(targets) do
  -- The stored gauge, plus what the cancels above moved (written at the end of the script).
  local stored = tonumber(redis.call('HGET', COUNTERS, status)) or 0
  local gauge = math.max(stored + (deltas[status] or 0), deleted[status] or 0)
  purged = purged + gauge
  count(status, -gauge)
  count('submitted', -gauge)
end

-- A job goes with the status of the task that ended it (JobStatus::purged_with).
local ended = {}
if targets['completed'] then
  ended['completed'] = true
end
if targets['dead'] then
  ended['failed'] = true
end
if targets['cancelled'] then
  ended['cancelled'] = true
end
if any_jobs and next(ended) then
  for _, job in ipairs(redis.call('ZRANGE', JOBS, 0, -1)) do
    if ended[redis.call('HGET', job_key(job), 'status')] then
      remove_job(job)
    end
  end
end
-- Tasks the cancels finished and the purge kept count against the bound.
retain(bound, age, now)
write_counts()
return int(purged)
