-- purge: ARGV = prefix, then the statuses to purge. Deletes those tasks as if they had never
-- been submitted, records dropped by the retention bound included (they live on only in
-- the gauges). Returns how many tasks went.
local targets = set_of(2, #ARGV)
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
  local gauge = math.max(tonumber(redis.call('HGET', COUNTERS, status)) or 0, deleted[status] or 0)
  purged = purged + gauge
  count(status, -gauge)
  count('submitted', -gauge)
end
write_counts()
return int(purged)
