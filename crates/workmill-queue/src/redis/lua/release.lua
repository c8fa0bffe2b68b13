-- release: ARGV = prefix, id, token. Hands an unstarted task back at its old place in
-- line, uncounting the attempt. Returns 'ok', 'lost' or 'missing'.
local id, token = ARGV[2], ARGV[3]
local key = task_key(id)
local f = redis.call('HMGET', key, 'status', 'token', 'attempts', 'priority', 'seq')
if not f[1] then
  return 'missing'
elseif f[1] ~= 'running' or f[2] ~= token then
  return 'lost'
end
local attempts = math.max((tonumber(f[3]) or 1) - 1, 0)
redis.call('HSET', key, 'status', 'pending', 'attempts', int(attempts))
redis.call('HDEL', key, 'token', 'lease_expires_at')
if attempts == 0 then
  -- It was never started: nothing names a start or a worker, as before its reserve.
  redis.call('HDEL', key, 'started_at', 'worker')
end
redis.call('ZREM', LEASES, id)
redis.call('ZADD', READY, score(f[4], f[5]), id)
moved('running', 'pending')
write_counts()
wake(1)
return 'ok'
