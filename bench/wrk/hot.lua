-- Scenario 2 and the fanout storm: every like goes to one content; each request is a
-- different user (thread tid takes tokens tid+1, tid+1+T, ...), so every user likes
-- once and the expected count is the number of successful likes.
-- args: tokens_file content_id nthreads
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
local C = require("common")
setup = C.setup
done = C.done

local tokens, cid, nthreads
local k = 0
extra = 0 -- requests that would have reused a token (must stay 0 for exactness)
local BODY

function init(args)
  tokens = C.load_lines(args[1])
  cid = args[2]
  nthreads = tonumber(args[3])
  BODY = string.format('{"query":"mutation($id: ID!) { like(input: {contentId: $id}) '
    .. '{ changed viewerReaction summary { likes } } }","variables":{"id":"%s"}}', cid)
end

function request()
  local i = tid + 1 + k * nthreads
  k = k + 1
  if i > #tokens then
    extra = extra + 1
    i = ((i - 1) % #tokens) + 1
  end
  return wrk.format("POST", "/graphql",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[i],
     ["X-Forwarded-For"] = C.addr(i)}, BODY)
end

function response(status, headers, body)
  C.response(status, headers, body)
end
