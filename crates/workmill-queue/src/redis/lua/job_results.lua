-- job_results: ARGV = prefix, job id. Returns {} for an unknown job; else {status,
-- maps_done, maps_total}, followed by the maps' results in map order once every map is done
-- (false for a result that is missing).
local job = ARGV[2]
local f = redis.call('HMGET', job_key(job), 'status', 'maps_done', 'maps_total')
if not f[1] then
  return {}
end
local out = {f[1], f[2] or '', f[3] or ''}
if f[2] and f[2] == f[3] then
  local maps = redis.call('LRANGE', job_maps_key(job), 0, -1)
  for i = 1, #maps, 1000 do
    local part = redis.call('HMGET', job_results_key(job), unpack(maps, i, math.min(i + 999, #maps)))
    for _, result in ipairs(part) do
      out[#out + 1] = result
    end
  end
end
return out
