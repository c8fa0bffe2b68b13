-- list: ARGV = prefix, status ('' for any), limit. Walks tasks in submission order and
-- returns, for each match, its id and its whole hash (field, value, ...).
local wanted, limit = ARGV[2], tonumber(ARGV[3])
local out = {}
local from = 0
local CHUNK = 500
while #out < 2 * limit do
  local ids = redis.call('ZRANGE', ALL, from, from + CHUNK - 1)
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    local key = task_key(id)
    if wanted == '' or redis.call('HGET', key, 'status') == wanted then
      local fields = redis.call('HGETALL', key)
      if #fields > 0 then
        out[#out + 1] = id
        out[#out + 1] = fields
        if #out >= 2 * limit then
          break
        end
      end
    end
  end
  from = from + CHUNK
end
return out
