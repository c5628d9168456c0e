-- wrk script: POST /v1/positions with UPDATES player positions per request (players jitter around home spots).
-- env: CAIRN_GAME_KEY, UPDATES (default 500), PLAYERS (default 10000)
local key = os.getenv("CAIRN_GAME_KEY") or "none"
local per = tonumber(os.getenv("UPDATES") or "500")
local players = tonumber(os.getenv("PLAYERS") or "10000")
local bodies = {}
local n = 0

init = function(args)
  math.randomseed(os.time())
  for b = 1, 64 do
    local parts = {}
    local start = ((b - 1) * per) % players
    for i = 1, per do
      local p = (start + i) % players + 1
      local x = (p * 7919) % 1000 - 500 + math.random(-3, 3)
      local z = (p * 104729) % 1000 - 500 + math.random(-3, 3)
      parts[i] = string.format('{"player":"p%d","pos":[%d,64,%d]}', p, x, z)
    end
    bodies[b] = '{"world":"overworld","updates":[' .. table.concat(parts, ",") .. ']}'
  end
end

request = function()
  n = n + 1
  return wrk.format("POST", "/v1/positions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, bodies[(n % 64) + 1])
end
