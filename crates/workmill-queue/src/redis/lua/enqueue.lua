-- enqueue: ARGV = prefix, count, then per task: id, name, payload, checksum, priority,
-- retry policy, run_at (microseconds, or '' for now).
-- Returns {'ok', now} or {'duplicate', id}; a duplicate (or an id held back as a job's
-- reduce) refuses the whole batch.
local taken, now = add_tasks(3, tonumber(ARGV[2]), nil)
if taken then
  return {'duplicate', taken}
end
write_counts()
return {'ok', int(now)}
