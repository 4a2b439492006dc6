-- Scenario 1 (and its control): like/unlike by many users over many contents.
-- args: tokens_file ncontents mode(graphql|control)
-- Per thread: mostly likes of a random (user, content); every third request unlikes a
-- pair this thread liked before, so unlikes are real state changes too.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
local C = require("common")
setup = C.setup
response = C.response
done = C.done

local tokens, ncontents, mode
local liked, n = {}, 0
local LIKE = 'mutation($id: ID!) { like(input: {contentId: $id}) '
  .. '{ contentId viewerReaction changed summary { likes } } }'
local UNLIKE = 'mutation($id: ID!) { unlike(input: {contentId: $id}) '
  .. '{ contentId viewerReaction changed summary { likes } } }'

function init(args)
  tokens = C.load_lines(args[1])
  ncontents = tonumber(args[2])
  mode = args[3]
  math.randomseed(os.time() + tid * 7919)
end

local function body(op, cid)
  if mode == "control" then
    return string.format('{"op":"%s","contentId":"%s"}', op, cid)
  end
  local q = (op == "like") and LIKE or UNLIKE
  return string.format('{"query":"%s","variables":{"id":"%s"}}', q, cid)
end

function request()
  n = n + 1
  local i, cid, op
  if n % 3 == 0 and #liked > 0 then
    local pick = table.remove(liked, math.random(#liked))
    i, cid, op = pick[1], pick[2], "unlike"
  else
    i = math.random(#tokens)
    cid = string.format("c%05d", math.random(ncontents) - 1)
    op = "like"
    if #liked < 1000 then liked[#liked + 1] = {i, cid} end
  end
  local path = (mode == "control") and "/control/like" or "/graphql"
  return wrk.format("POST", path,
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[i],
     ["X-Forwarded-For"] = C.addr(i)}, body(op, cid))
end
