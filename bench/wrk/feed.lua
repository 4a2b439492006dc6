-- Scenario 3: a feed page: engagementSummaries of 50 ids, signed-in viewer.
-- args: tokens_file ncontents mode(graphql|control)
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
local C = require("common")
setup = C.setup
response = C.response
done = C.done

local tokens, ncontents, mode
local Q = 'query($ids: [ID!]!) { engagementSummaries(contentIds: $ids) '
  .. '{ contentId likes viewerReaction reactions { reaction count } } }'

function init(args)
  tokens = C.load_lines(args[1])
  ncontents = tonumber(args[2])
  mode = args[3] or "graphql"
  math.randomseed(os.time() + tid * 104729)
end

function request()
  local start = math.random(ncontents) - 1
  local ids = {}
  for j = 0, 49 do ids[#ids + 1] = string.format('"c%05d"', (start + j) % ncontents) end
  local body, path
  if mode == "control" then
    body = string.format('{"ids":[%s]}', table.concat(ids, ","))
    path = "/control/feed"
  else
    body = string.format('{"query":"%s","variables":{"ids":[%s]}}', Q, table.concat(ids, ","))
    path = "/graphql"
  end
  return wrk.format("POST", path,
    {["Content-Type"] = "application/json",
     ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]}, body)
end
