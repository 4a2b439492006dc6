-- Scenario 4: recordViews in batches of 100 view events, signed-in viewers.
-- args: tokens_file ncontents batch run_tag [mode(graphql|control)]
-- (session/event ids are unique per run_tag)
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
local C = require("common")
setup = C.setup
response = C.response
done = C.done

local tokens, ncontents, batch, tag, mode
local n = 0
local Q = 'mutation($in: [ViewInput!]!) { recordViews(inputs: $in) '
  .. '{ contentId sessionId decision { counted rule reason } } }'

function init(args)
  tokens = C.load_lines(args[1])
  ncontents = tonumber(args[2])
  batch = tonumber(args[3])
  tag = args[4]
  mode = args[5] or "graphql"
  math.randomseed(os.time() + tid * 15485863)
end

-- A batch is one viewer's: their own device and their own network (X-Forwarded-For,
-- C.addr), as organic traffic is. One device id per batch slot shared by every
-- viewer, all from 127.0.0.1, is what a device farm switching accounts looks like,
-- and the integrity worker spends its time on that crowd instead (docs/PERFORMANCE.md).
function request()
  n = n + 1
  local i = math.random(#tokens)
  local items = {}
  for j = 1, batch do
    local cid = string.format("c%05d", math.random(ncontents) - 1)
    items[j] = string.format(
      '{"contentId":"%s","sessionId":"s%s-%d-%d-%d","deviceId":"dev-%d",'
      .. '"eventId":"e%s-%d-%d-%d","watchedMs":%d,"positionMs":%d,"visibleFraction":0.9,'
      .. '"final":true}',
      cid, tag, tid, n, j, i, tag, tid, n, j, 5000 + math.random(20000), 5000)
  end
  local body, path
  if mode == "control" then
    body = string.format('{"in":[%s]}', table.concat(items, ","))
    path = "/control/views"
  else
    body = string.format('{"query":"%s","variables":{"in":[%s]}}', Q, table.concat(items, ","))
    path = "/graphql"
  end
  return wrk.format("POST", path,
    {["Content-Type"] = "application/json",
     ["Authorization"] = "Bearer " .. tokens[i],
     ["X-Forwarded-For"] = C.addr(i)}, body)
end
