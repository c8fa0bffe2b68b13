-- fail: records failed attempts whose outcome the caller decided with RetryPolicy::decide.
-- ARGV = prefix, retention bound, retention age, then per task: id, token, outcome
-- ('retry' or 'dead'), delay (microseconds), next priority, failure kind, message, and
-- '1' for a rescue of a lapsed lease (applied only if the lease is still lapsed) or '0'.
-- Returns one entry per task: the retry's run_at, 'dead', 'lost', 'missing', or 'held'
-- (a rescue found the lease extended in the meantime). A task of a job that ends dead
-- fails its job (jobs.lua), in this same script.
local bound, age = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_us()
local out = {}
local woken = 0
local backing_off = false
for i = 4, #ARGV, 8 do
  local id, token, outcome = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local rescue = ARGV[i + 7] == '1'
  local key = task_key(id)
  local f = redis.call('HMGET', key, 'status', 'token', 'lease_expires_at', 'job')
  if not f[1] then
    out[#out + 1] = 'missing'
  elseif f[1] ~= 'running' or f[2] ~= token then
    out[#out + 1] = 'lost'
  elseif rescue and (tonumber(f[3]) or 0) > now then
    out[#out + 1] = 'held'
  else
    redis.call('ZREM', LEASES, id)
    redis.call('HDEL', key, 'token', 'lease_expires_at')
    count('failed_attempts', 1)
    if rescue then
      count('expired_leases', 1)
    end
    if outcome == 'retry' then
      local seq = redis.call('HINCRBY', COUNTERS, 'seq', 1)
      local run_at = now + tonumber(ARGV[i + 3])
      local priority = ARGV[i + 4]
      redis.call('HSET', key, 'status', 'retrying', 'priority', priority, 'seq', int(seq),
        'run_at', int(run_at), 'error_kind', ARGV[i + 5], 'error_message', ARGV[i + 6])
      if run_at <= now then
        redis.call('ZADD', READY, score(priority, seq), id)
        woken = woken + 1
      else
        redis.call('ZADD', DELAYED, int(run_at), id)
        backing_off = true
      end
      moved('running', 'retrying')
      count('retried', 1)
      out[#out + 1] = int(run_at)
    else
      redis.call('HSET', key, 'status', 'dead', 'finished_at', int(now),
        'error_kind', ARGV[i + 5], 'error_message', ARGV[i + 6])
      finish(id, now)
      moved('running', 'dead')
      out[#out + 1] = 'dead'
      if f[4] then
        job_task_dead(f[4], id, ARGV[i + 5], ARGV[i + 6], now)
      end
    end
  end
end
announce()
retain(bound, age, now)
write_counts()
-- A token per retry due now, and one so that a sleeping worker learns the new first due time.
wake(woken + (backing_off and 1 or 0))
return out
