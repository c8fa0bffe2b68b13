-- next_due: ARGV = prefix. How long an idle worker may sleep: 0 when a task is ready now,
-- else microseconds until the first delayed task comes due or the first lease lapses,
-- or -1 when neither is waiting.
if redis.call('ZCARD', READY) > 0 then
  return 0
end
local now = now_us()
local first = -1
for _, index in ipairs({DELAYED, LEASES}) do
  local head = redis.call('ZRANGE', index, 0, 0, 'WITHSCORES')
  if #head == 2 then
    local wait = math.max(tonumber(head[2]) - now, 0)
    if first < 0 or wait < first then
      first = wait
    end
  end
end
return first
