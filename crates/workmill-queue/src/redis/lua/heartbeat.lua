-- heartbeat: ARGV = prefix, id, token, extension (microseconds).
-- Returns {'ok', new expiry}, 'lost' or 'missing'.
local id, token, extend = ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = task_key(id)
local f = redis.call('HMGET', key, 'status', 'token')
if not f[1] then
  return 'missing'
elseif f[1] ~= 'running' or f[2] ~= token then
  return 'lost'
end
local expires = now_us() + extend
redis.call('HSET', key, 'lease_expires_at', int(expires))
redis.call('ZADD', LEASES, int(expires), id)
return {'ok', int(expires)}
