-- Shared by the bench's wrk scripts: thread ids, token list, result counting, JSON summary.
-- Each wrk thread has its own Lua state; setup() runs in the main state.
local M = {}
local threads = {}
local next_tid = 0

function M.setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

-- The client address of user number i (X-Forwarded-For, which the server believes
-- from 127.0.0.1): organic users come from networks of their own, and many fresh
-- accounts liking one content unseen from one address is what the integrity worker
-- excludes as a fake-account crowd (docs/INTEGRITY.md, blind_crowd).
function M.addr(i)
  return string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
end

function M.load_lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

-- Counts per thread; read back in done() through thread:get.
ok, bad_status, gql_errors, sample_error = 0, 0, 0, ""

function M.response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
    if sample_error == "" then sample_error = "HTTP " .. status .. ": " .. string.sub(body, 1, 300) end
  elseif string.find(body, '"errors"', 1, true) or string.find(body, '"error"', 1, true) then
    gql_errors = gql_errors + 1
    if sample_error == "" then sample_error = string.sub(body, 1, 300) end
  else
    ok = ok + 1
  end
end

function M.done(summary, latency, requests)
  local t = {ok = 0, bad_status = 0, gql_errors = 0, sample_error = "", extra = 0}
  for _, thread in ipairs(threads) do
    t.ok = t.ok + (thread:get("ok") or 0)
    t.bad_status = t.bad_status + (thread:get("bad_status") or 0)
    t.gql_errors = t.gql_errors + (thread:get("gql_errors") or 0)
    t.extra = t.extra + (thread:get("extra") or 0)
    local e = thread:get("sample_error") or ""
    if t.sample_error == "" then t.sample_error = e end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"ok":%d,"bad_status":%d,"gql_errors":%d,"extra":%d,' ..
    '"lat_us":{"mean":%.1f,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d},"sample_error":%q}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    t.ok, t.bad_status, t.gql_errors, t.extra,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, t.sample_error))
end

return M
