-- enqueue: ARGV = prefix, count, then per task: id, name, payload, checksum, priority,
-- retry policy, run_at (microseconds, or '' for now).
-- Returns {'ok', now} or {'duplicate', id}; a duplicate refuses the whole batch.
local n = tonumber(ARGV[2])
local FIELDS = 7
local seen = {}
for i = 0, n - 1 do
  local id = ARGV[3 + i * FIELDS]
  if seen[id] or redis.call('EXISTS', task_key(id)) == 1 then
    return {'duplicate', id}
  end
  seen[id] = true
end
local now = now_us()
local first = redis.call('HINCRBY', COUNTERS, 'seq', n) - n + 1
local due = 0
for i = 0, n - 1 do
  local o = 3 + i * FIELDS
  local id, priority, run_at = ARGV[o], ARGV[o + 4], ARGV[o + 6]
  local seq = first + i
  local at = now
  if run_at ~= '' then
    at = math.max(tonumber(run_at), now)
  end
  redis.call('HSET', task_key(id), 'name', ARGV[o + 1], 'payload', ARGV[o + 2],
    'checksum', ARGV[o + 3], 'status', 'pending', 'priority', priority, 'seq', int(seq),
    'attempts', '0', 'retry', ARGV[o + 5], 'created_at', int(now), 'run_at', int(at))
  if at <= now then
    redis.call('ZADD', READY, score(priority, seq), id)
    due = due + 1
  else
    redis.call('ZADD', DELAYED, int(at), id)
  end
  redis.call('ZADD', ALL, int(seq), id)
end
count('submitted', n)
count('pending', n)
write_counts()
wake(due)
return {'ok', int(now)}
