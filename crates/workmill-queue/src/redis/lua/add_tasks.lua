-- workmill: adding tasks, shared by enqueue.lua and submit_job.lua (put after prelude.lua).

-- Adds the `n` tasks whose fields start at ARGV[first], seven each: id, name, payload,
-- checksum, priority, retry policy, run_at (microseconds, or '' for now). They become
-- pending tasks of `job`, or plain tasks when `job` is nil. Refuses all of them, writing
-- nothing, if an id repeats in the batch, is a stored task's, or is held back as the reduce
-- of a job still mapping: returns that id. Otherwise returns nil and the time written; the
-- counts are the caller's to write (`write_counts`), once, at the end of its script.
local function add_tasks(first, n, job)
  local FIELDS = 7
  local seen = {}
  local keys = {}
  for i = 0, n - 1 do
    local id = ARGV[first + i * FIELDS]
    if seen[id] then
      return id
    end
    seen[id] = true
    keys[#keys + 1] = task_key(id)
    keys[#keys + 1] = held_key(id)
  end
  -- One EXISTS for the batch; only when it finds something is each id asked about.
  local existing = 0
  for i = 1, #keys, 1000 do
    existing = existing + redis.call('EXISTS', unpack(keys, i, math.min(i + 999, #keys)))
  end
  if existing > 0 then
    for i = 0, n - 1 do
      if redis.call('EXISTS', keys[2 * i + 1], keys[2 * i + 2]) > 0 then
        return ARGV[first + i * FIELDS]
      end
    end
  end
  local now = now_us()
  local seq_first = redis.call('HINCRBY', COUNTERS, 'seq', n) - n + 1
  local ready, delayed, all = {}, {}, {}
  for i = 0, n - 1 do
    local o = first + i * FIELDS
    local id, priority, run_at = ARGV[o], ARGV[o + 4], ARGV[o + 6]
    local seq = seq_first + i
    local at = now
    if run_at ~= '' then
      at = math.max(tonumber(run_at), now)
    end
    local key = keys[2 * i + 1]
    redis.call('HSET', key, 'name', ARGV[o + 1], 'payload', ARGV[o + 2],
      'checksum', ARGV[o + 3], 'status', 'pending', 'priority', priority, 'seq', int(seq),
      'attempts', '0', 'retry', ARGV[o + 5], 'created_at', int(now), 'run_at', int(at))
    if job then
      redis.call('HSET', key, 'job', job)
    end
    if at <= now then
      ready[#ready + 1] = int(score(priority, seq))
      ready[#ready + 1] = id
    else
      delayed[#delayed + 1] = int(at)
      delayed[#delayed + 1] = id
    end
    all[#all + 1] = int(seq)
    all[#all + 1] = id
  end
  bulk('ZADD', READY, ready)
  bulk('ZADD', DELAYED, delayed)
  bulk('ZADD', ALL, all)
  count('submitted', n)
  count('pending', n)
  -- A token per ready task, and one so that a sleeping worker learns the new first due time.
  wake(#ready / 2 + (#delayed > 0 and 1 or 0))
  return nil, now
end
