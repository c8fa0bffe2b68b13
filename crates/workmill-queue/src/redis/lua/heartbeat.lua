-- heartbeat: ARGV = prefix, extension (microseconds), then id, token for each lease.
-- Each lease still held (its task `running` under its token) gets one new expiry, now + extension,
-- in the hash and in `leases`; the others change nothing.
-- Returns {new expiry, verdict per lease in order}: 'ok', 'lost' or 'missing'.
local expires = int(now_us() + tonumber(ARGV[2]))
local reply = {expires}
local extended = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local key = task_key(id)
  local f = redis.call('HMGET', key, 'status', 'token')
  if not f[1] then
    reply[#reply + 1] = 'missing'
  elseif f[1] ~= 'running' or f[2] ~= token then
    reply[#reply + 1] = 'lost'
  else
    redis.call('HSET', key, 'lease_expires_at', expires)
    extended[#extended + 1] = expires
    extended[#extended + 1] = id
    reply[#reply + 1] = 'ok'
  end
end
if #extended > 0 then
  bulk('ZADD', LEASES, extended)
end
return reply
