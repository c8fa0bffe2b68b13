-- enqueue: ARGV = prefix, count, then per task: id, name, payload, checksum, priority,
-- retry policy, run_at (microseconds, or '' for now).
-- Returns {'ok', now} or {'duplicate', id}; a duplicate refuses the whole batch.
local n = tonumber(ARGV[2])
local FIELDS = 7
local seen = {}
local keys = {}
for i = 0, n - 1 do
  local id = ARGV[3 + i * FIELDS]
  if seen[id] then
    return {'duplicate', id}
  end
  seen[id] = true
  keys[#keys + 1] = task_key(id)
end
-- One EXISTS for the batch; only when it finds something is each id asked about.
local existing = 0
for i = 1, #keys, 1000 do
  existing = existing + redis.call('EXISTS', unpack(keys, i, math.min(i + 999, #keys)))
end
if existing > 0 then
  for i, key in ipairs(keys) do
    if redis.call('EXISTS', key) == 1 then
      return {'duplicate', ARGV[3 + (i - 1) * FIELDS]}
    end
  end
end
local now = now_us()
local first = redis.call('HINCRBY', COUNTERS, 'seq', n) - n + 1
local ready, delayed, all = {}, {}, {}
for i = 0, n - 1 do
  local o = 3 + i * FIELDS
  local id, priority, run_at = ARGV[o], ARGV[o + 4], ARGV[o + 6]
  local seq = first + i
  local at = now
  if run_at ~= '' then
    at = math.max(tonumber(run_at), now)
  end
  redis.call('HSET', keys[i + 1], 'name', ARGV[o + 1], 'payload', ARGV[o + 2],
    'checksum', ARGV[o + 3], 'status', 'pending', 'priority', priority, 'seq', int(seq),
    'attempts', '0', 'retry', ARGV[o + 5], 'created_at', int(now), 'run_at', int(at))
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
write_counts()
wake(#ready / 2)
return {'ok', int(now)}
