-- wrk script: POST /v1/batch with OPS dig ops per request, from many players at their own spots.
-- env: CAIRN_GAME_KEY, HUNT (default bench), OPS (default 100), PLAYERS (default 20000)
local key = os.getenv("CAIRN_GAME_KEY") or "none"
local hunt = os.getenv("HUNT") or "bench"
local ops = tonumber(os.getenv("OPS") or "100")
local players = tonumber(os.getenv("PLAYERS") or "20000")
local bodies = {}
local n = 0

init = function(args)
  math.randomseed(os.time())
  for b = 1, 64 do
    local parts = {}
    for i = 1, ops do
      local p = math.random(1, players)
      local x = (p * 7919) % 1000 - 500
      local z = (p * 104729) % 1000 - 500
      parts[i] = string.format(
        '{"op":"dig","hunt":"%s","player":"p%d","pos":[%d,64,%d],"at":[%d,63,%d],"request_id":"b%d-%d"}',
        hunt, p, x, z, x + math.random(-3, 3), z + math.random(-3, 3), b, i)
    end
    bodies[b] = '{"ops":[' .. table.concat(parts, ",") .. ']}'
  end
end

request = function()
  n = n + 1
  return wrk.format("POST", "/v1/batch",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, bodies[(n % 64) + 1])
end
