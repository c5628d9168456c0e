-- wrk script for bench_redis.sh: POST /v1/hunts/$HUNT/dig, one dig per request.
-- MODE=claim: every request is a new player digging on a treasure (a durable claim through Redis).
-- MODE=miss: every request is a new player digging 40 blocks off a treasure (decided on the node alone).
-- env: CAIRN_GAME_KEY, HUNT, SPOTS (file of "x y z" lines), PREFIX (unique per wrk process), MODE
local key = os.getenv("CAIRN_GAME_KEY") or "none"
local hunt = os.getenv("HUNT") or "bench"
local prefix = os.getenv("PREFIX") or "w"
local mode = os.getenv("MODE") or "claim"
local spots = {}
for line in io.lines(os.getenv("SPOTS")) do
  local x, y, z = line:match("(-?%d+) (-?%d+) (-?%d+)")
  spots[#spots + 1] = {tonumber(x), tonumber(y), tonumber(z)}
end
local threads, counter, tid = 0, 0, 0
local path = "/v1/hunts/" .. hunt .. "/dig"
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}

setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

init = function(args)
  tid = tid or 0
end

request = function()
  counter = counter + 1
  local s = spots[(counter % #spots) + 1]
  local x = s[1]
  if mode == "miss" then x = x + 40 end
  local body = string.format('{"player":"%s%s-%d","pos":[%d,%d,%d],"at":[%d,%d,%d],"request_id":"r%d"}',
    prefix, tostring(wrk.thread:get("tid")), counter, x, s[2], s[3], x, s[2], s[3], counter)
  return wrk.format("POST", path, headers, body)
end
