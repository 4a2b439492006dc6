"""The integrity worker's windowed features in Redis (docs/INTEGRITY.md, "Detection").

Per actor (keys with the actor's hash tag, storage/keys.py ``integrity_actor``):

* ``ap`` sorted set: tokens applied (score: when), trimmed to the dedupe horizon;
* ``f`` hash: counters per time bucket (``"<metric>:<bucket>"``), the notes the
  worker left about the actor's groups (``"n:<d|i|s>:<id>"`` = ``"v,...,ts"``:
  a device's accounts; an address's accounts and anonymous devices; a playback
  signature's crowd) and the last trust it reported (``"t"``);
* ``s`` hash and ``so`` sorted set: the actor's sessions (content, first and last
  event, events, furthest position, playback shape so far, whether it reloaded a
  live session, the addresses it was sent again from) by last event;
* ``c`` sorted set: contents it sent view events of (blind likes);
* ``g`` hash: how many of its sessions ended with each playback shape.

Per device and per address a sorted set of the actors seen there recently
(newest ``GROUP_CAP``), and per address hourly HyperLogLogs of its signed-in
accounts and anonymous devices; per playback signature (content + the shape as
the client reported it: events, watch time per event, furthest position; without
the arrival intervals, which the network blurs) a sorted set of the actors who
played it so.

Round trips: :meth:`record` is one pipeline (one script per actor, one per
device, address; plus the notes and trusts remembered from the last batch);
:meth:`read` is one pipeline (one script per playback signature to register,
one per actor to read). Every script and command touches one slot.

Effectively once: an actor's script skips the events whose token is in its
applied set and adds the rest, atomically with their counters. Group writes are
idempotent by nature (set members, HyperLogLog adds), so redelivery changes
nothing anywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from domain.integrity_rules import Features, Windows
from storage.keys import Keys
from storage.redis_scripts import PipelinedScript

# Actors remembered per device, address and signature (enough for every default
# threshold; the newest are kept, and re-assessed when the group turns bad).
GROUP_CAP = 256
SESSIONS_CAP = 500  # sessions per actor
CONTENTS_CAP = 2_000  # contents viewed per actor (blind likes)
SHAPES_CAP = 500  # playback shapes per actor before old ones are pruned
SHORT_SEGMENT_MS = 500  # a later event adding less watch than this (but some): a toggle
INVISIBLE_BELOW = 0.05  # visibleFraction below this: nobody could see it
SHAPE_EVENTS = 16  # events of a session that make its playback shape
INTERVAL_QUANTUM_MS = 250  # event intervals in a shape, rounded to this
# A session "stops at the count" when it watches on, after its view counted, for at
# most this share of the watch time it had then (counted at 30 s: stopped by 39 s).
HUG_SHARE = 0.3
# A session joins its playback signature's crowd (identical_crowd) only with two
# events or more, or this much watch time: one report of under a second says too
# little. Hundreds scroll past a popular post in 150-700 ms, one event each, and
# eight of them agreeing to the millisecond is chance there (a bench run excluded
# organic users for it), while a glance that short counts no view under the
# default policies (a post counts from 1.5 s).
CROWD_MIN_WATCH_MS = 1000
# A new session on a content *reloads* the actor's earlier one on it when that one
# had played, had not ended and sent an event within this long: a page reloaded
# mid-playback (the SDK ends its sessions at pagehide and at the media's end).
RELOAD_GAP_MS = 30_000
RELOAD_SCAN = 16  # the actor's newest sessions searched for the one reloaded

# Event codes for the actor script.
LIKE = "L"  # a reaction added (none -> some)
UNLIKE = "U"  # a reaction removed
VIEW = "V"  # a counted view
RAW = "R"  # a view event
END = "E"  # a view session ended
REPLAY = "P"  # a view session sent again verbatim, from one more address

# Metrics (bucketed counter fields), in the order READ returns them.
METRICS = ("lk", "bl", "gl", "ul", "vw", "rw", "im", "vf", "nv", "pe", "st", "sg", "sh", "ss", "wm")
PEAKS = ("lk", "vw", "wm")

RECORD = """
local ap, f, s, so, c, g = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now = tonumber(ARGV[1])
local bms = tonumber(ARGV[2])
local win = tonumber(ARGV[3])
local horizon = tonumber(ARGV[4])
local short = tonumber(ARGV[5])
local invisible = tonumber(ARGV[6])
local max_sessions = tonumber(ARGV[7])
local max_contents = tonumber(ARGV[8])
local max_shapes = tonumber(ARGV[9])
local shape_events = tonumber(ARGV[10])
local quantum = tonumber(ARGV[11])
local group_ms = tonumber(ARGV[12])
local hug = tonumber(ARGV[13])
local crowd_min_watch = tonumber(ARGV[14])
local n = tonumber(ARGV[15])
local oldest = now - win
redis.call('ZREMRANGEBYSCORE', ap, '-inf', now - horizon)

local function inc(metric, t, by)
  if by == 0 then return end
  local b = math.floor(t / bms)
  if b * bms < oldest then return end
  redis.call('HINCRBY', f, metric .. ':' .. string.format('%d', b), by)
end
-- Watch time ending at t, credited over the buckets it covers (a first event is
-- taken to have started that long before).
local function spread(t, ms)
  local stop = t
  local left = ms
  while left > 0 do
    local b = math.floor((stop - 1) / bms)
    if b * bms < oldest then return end
    local part = math.min(left, stop - b * bms)
    redis.call('HINCRBY', f, 'wm:' .. string.format('%d', b), part)
    left = left - part
    stop = stop - part
  end
end
local function split(state)
  local out, from = {}, 1
  while true do
    local i = string.find(state, '\\t', from, true)
    if not i then
      out[#out + 1] = string.sub(state, from)
      return out
    end
    out[#out + 1] = string.sub(state, from, i - 1)
    from = i + 1
  end
end

local shapes = {}
local marks = {}
-- Whether sid is the actor's only session in the window (so far: a device seen
-- again takes it back, 'x').
local function only(sid)
  local ids = redis.call('ZRANGE', so, 0, 1)
  return #ids == 0 or (#ids == 1 and ids[1] == sid)
end
-- A session that stopped at the count: it watched on for at most a share of the
-- watch time it had when its view counted (3 events at least: a single report at
-- the end says nothing of when it counted).
local function hugged(st)
  local at = tonumber(st[10] or '-1')
  if at <= 0 or tonumber(st[4]) < 3 then return false end
  return tonumber(st[7]) - at <= hug * at
end
-- 'h', the furthest position it stopped at (in tenths of a second: players report
-- the end of the media to the ms, people and scripts stop anywhere), a tab, the content.
local function stopped(st)
  local at = math.floor(math.max(tonumber(st[5]), 0) / 100)
  return 'h' .. string.format('%d', at) .. '\\t' .. st[1]
end
-- States written before fields 11 and 12 existed.
local function pad(st)
  for i = 11, 12 do st[i] = st[i] or '0' end
  return st
end
local function finish(sid, st, t)
  -- st: content, first, last, n, pmax, shape, watched, ended, counted at (time),
  -- watched when counted, '1' if it reloaded a live session, addresses it was
  -- sent again from
  if st[8] == '1' then return end
  st[8] = '1'
  st[3] = tostring(math.max(t, tonumber(st[3])))
  if tonumber(st[7]) <= 0 then return end
  if only(sid) then
    marks[#marks + 1] = 'o' .. st[1]
    if hugged(st) then marks[#marks + 1] = stopped(st) end
  end
  local shape = st[4] .. '|' .. st[6] .. '|' .. st[5]
  -- The shape itself is the field (at most SHAPE_EVENTS steps): fakeredis, the
  -- embedded mode's Redis, has no redis.sha1hex.
  local key = shape
  local old = redis.call('HGET', g, key)
  local count = 1
  if old then
    local oc, ot = string.match(old, '^(%d+),(%-?%d+)$')
    if oc and tonumber(ot) >= oldest then count = tonumber(oc) + 1 end
  end
  redis.call('HSET', g, key, string.format('%d,%d', count, t))
  -- Across actors only what the clients reported is compared: the intervals as the
  -- server receives them carry network and queueing jitter, which splits one
  -- script's identical playbacks into many shapes under load.
  if tonumber(st[4]) < 2 and tonumber(st[7]) < crowd_min_watch then return end
  local reported = string.gsub(st[6], '/%-?%d+', '')
  shapes[#shapes + 1] = st[1] .. '\\t' .. st[4] .. '|' .. reported .. '|' .. st[5]
end

local fresh = {}
local applied = 0
for i = 0, n - 1 do
  local p = 16 + i * 10
  local token, code, t = ARGV[p], ARGV[p + 1], tonumber(ARGV[p + 2])
  local ok = fresh[token]
  if ok == nil then
    ok = not redis.call('ZSCORE', ap, token)
    fresh[token] = ok
  end
  if ok then
    applied = applied + 1
    local content, sid = ARGV[p + 3], ARGV[p + 4]
    local watched, accepted = tonumber(ARGV[p + 5]), tonumber(ARGV[p + 6])
    local pos, vis = tonumber(ARGV[p + 7]), tonumber(ARGV[p + 8])
    local final = ARGV[p + 9] == '1'
    if code == 'L' then
      inc('lk', t, 1)
      local counted = redis.call('ZSCORE', c, content .. '\\tv')
      local marked = redis.call('ZSCORE', c, content .. '\\tb')
        or redis.call('ZSCORE', c, content .. '\\tg')
      if (not counted or tonumber(counted) < t - win)
          and (not marked or tonumber(marked) < oldest) then
        local seen = redis.call('ZSCORE', c, content)
        local mark = 'g'
        if not seen or tonumber(seen) < t - win then mark = 'b' end
        inc(mark .. 'l', t, 1)
        redis.call('ZADD', c, t, content .. '\\t' .. mark)
        if mark == 'b' then marks[#marks + 1] = 'l' .. content end
      end
    elseif code == 'U' then
      inc('ul', t, 1)
    elseif code == 'V' then
      inc('vw', t, 1)
      redis.call('ZADD', c, 'GT', t, content)
      redis.call('ZADD', c, 'GT', t, content .. '\\tv')
      local raw = redis.call('HGET', s, sid)
      if raw then
        local st = split(raw)
        if (st[9] or '0') == '0' then
          st[9] = tostring(t)
          st[10] = st[7]
          -- Counted at or after its end (the last event counted it).
          if st[8] == '1' and tonumber(st[7]) > 0 and only(sid) and hugged(st) then
            marks[#marks + 1] = stopped(st)
          end
          redis.call('HSET', s, sid, table.concat(st, '\\t'))
        end
      end
      -- A like before its view counted (a once-at-the-end client, a like at 1 s of
      -- a playback that went on) is supported after all: take it back.
      for _, mark in ipairs({'b', 'g'}) do
        local at = redis.call('ZSCORE', c, content .. '\\t' .. mark)
        if at then
          redis.call('ZREM', c, content .. '\\t' .. mark)
          inc(mark .. 'l', tonumber(at), -1)
          if mark == 'b' then marks[#marks + 1] = 'u' .. content end
        end
      end
    elseif code == 'R' then
      inc('rw', t, 1)
      redis.call('ZADD', c, 'GT', t, content)
      -- A blind like whose content is opened afterwards: now a glance, until its
      -- view counts.
      local at = redis.call('ZSCORE', c, content .. '\\tb')
      if at then
        redis.call('ZREM', c, content .. '\\tb')
        redis.call('ZADD', c, at, content .. '\\tg')
        inc('bl', tonumber(at), -1)
        inc('gl', tonumber(at), 1)
        marks[#marks + 1] = 'u' .. content
      end
      if watched < 0 or (pos and pos < 0) or (watched > 0 and accepted == 0) then
        inc('im', t, 1)
      end
      if vis then
        inc('vf', t, 1)
        if vis < invisible then inc('nv', t, 1) end
      end
      local raw = redis.call('HGET', s, sid)
      local st
      if not raw then
        inc('ss', t, 1)
        spread(t, math.max(accepted, 0))
        st = {content, tostring(t), tostring(t), '1', tostring(pos or -1),
              tostring(watched), tostring(math.max(accepted, 0)), '0', '0', '-1', '0', '0'}
        -- A reload: the actor's earlier session on this content had played, had
        -- not ended and was live moments ago.
        local recent = redis.call('ZREVRANGE', so, 0, %(reload_scan)s - 1)
        if #recent > 0 then
          for _, prev in ipairs(redis.call('HMGET', s, unpack(recent))) do
            if prev then
              local p = split(prev)
              if p[1] == content and p[8] ~= '1' and tonumber(p[7]) > 0
                  and t - tonumber(p[3]) <= %(reload_gap)s then
                st[11] = '1'
                break
              end
            end
          end
        end
        -- A second session: the first was not a one-off after all.
        local ids = redis.call('ZRANGE', so, 0, 1)
        if #ids == 1 and ids[1] ~= sid then
          local prev = redis.call('HGET', s, ids[1])
          if prev then marks[#marks + 1] = 'x' .. split(prev)[1] end
        end
      else
        st = split(raw)
        local count = tonumber(st[4]) + 1
        local interval = t - tonumber(st[3])
        inc('sg', t, 1)
        if watched > 0 and watched < short then inc('sh', t, 1) end
        inc('wm', t, math.max(accepted, 0))
        local pmax = tonumber(st[5])
        if pos and watched > 0 then
          inc('pe', t, 1)
          if pos <= pmax then inc('st', t, 1) end
        end
        if pos and pos > pmax then st[5] = tostring(pos) end
        if count <= shape_events then
          st[6] = st[6] .. ',' .. watched .. '/' .. math.floor(interval / quantum + 0.5)
        end
        st[4] = tostring(count)
        st[3] = tostring(math.max(t, tonumber(st[3])))
        st[7] = tostring(tonumber(st[7]) + math.max(accepted, 0))
      end
      if final then finish(sid, st, t) end
      redis.call('HSET', s, sid, table.concat(st, '\\t'))
      redis.call('ZADD', so, 'GT', t, sid)
    elseif code == 'E' then
      local raw = redis.call('HGET', s, sid)
      if raw then
        local st = split(raw)
        finish(sid, st, t)
        redis.call('HSET', s, sid, table.concat(st, '\\t'))
      end
    elseif code == 'P' then
      -- One more address the session came again from (the token is per address).
      local raw = redis.call('HGET', s, sid)
      if raw then
        local st = pad(split(raw))
        st[12] = tostring(tonumber(st[12]) + 1)
        redis.call('HSET', s, sid, table.concat(st, '\\t'))
      end
    end
  end
end
for token, ok in pairs(fresh) do
  if ok then redis.call('ZADD', ap, now, token) end
end
-- Fields the worker asks to keep (notes about the actor's groups, its last trust).
local pr = 16 + n * 10
for i = 0, tonumber(ARGV[pr]) - 1 do
  redis.call('HSET', f, ARGV[pr + 1 + 2 * i], ARGV[pr + 2 + 2 * i])
end

-- Bounds: sessions and contents of the window, shapes when there are many.
local function drop_sessions(ids)
  for i = 1, #ids, 500 do
    local j = math.min(i + 499, #ids)
    redis.call('HDEL', s, unpack(ids, i, j))
    redis.call('ZREM', so, unpack(ids, i, j))
  end
end
drop_sessions(redis.call('ZRANGEBYSCORE', so, '-inf', '(' .. oldest, 'LIMIT', 0, 5000))
local extra = redis.call('ZCARD', so) - max_sessions
if extra > 0 then drop_sessions(redis.call('ZRANGE', so, 0, extra - 1)) end
redis.call('ZREMRANGEBYSCORE', c, '-inf', '(' .. oldest)
redis.call('ZREMRANGEBYRANK', c, 0, -(max_contents + 1))
if redis.call('HLEN', g) > max_shapes then
  local flat = redis.call('HGETALL', g)
  for i = 1, #flat, 2 do
    local ot = tonumber(string.match(flat[i + 1], ',(%-?%d+)$'))
    if not ot or ot < oldest then redis.call('HDEL', g, flat[i]) end
  end
end
redis.call('PEXPIRE', ap, horizon)
redis.call('PEXPIRE', f, math.max(win, group_ms) + bms)
for _, k in ipairs({s, so, c, g}) do redis.call('PEXPIRE', k, win + bms) end
local out = {applied}
for _, sh in ipairs(shapes) do out[#out + 1] = 's' .. sh end
for _, mk in ipairs(marks) do out[#out + 1] = mk end
return out
""".replace("%(reload_scan)s", str(RELOAD_SCAN)).replace("%(reload_gap)s", str(RELOAD_GAP_MS))

# One group (a device's or a signature's actors): add members, keep the window and
# the newest ``cap``; returns signed-in and all members before and after, the most
# signed-in members last seen within ``recent`` ms of each other and the signed-in
# members (none when ``recent`` is 0), then the members.
# ARGV: now, window, cap, recent, n, (actor, t) * n.
GROUP = """
local m = KEYS[1]
local now, window, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local recent = tonumber(ARGV[4])
local function counts(list)
  local users = 0
  for _, a in ipairs(list) do
    if string.sub(a, 1, 2) == 'u:' then users = users + 1 end
  end
  return users, #list
end
local bu, ba = counts(redis.call('ZRANGEBYSCORE', m, now - window, '+inf'))
for i = 0, tonumber(ARGV[5]) - 1 do
  redis.call('ZADD', m, 'GT', ARGV[7 + 2 * i], ARGV[6 + 2 * i])
end
redis.call('ZREMRANGEBYSCORE', m, '-inf', '(' .. (now - window))
redis.call('ZREMRANGEBYRANK', m, 0, -(cap + 1))
redis.call('PEXPIRE', m, window)
local members = redis.call('ZRANGE', m, 0, -1)
local au, aa = counts(members)
-- The most signed-in members last seen within ``recent`` ms of each other (a lower
-- bound of the accounts that used it within that span: only last times are kept).
local most, users = 0, {}
if recent > 0 then
  local flat = redis.call('ZRANGE', m, 0, -1, 'WITHSCORES')
  local times = {}
  for i = 1, #flat, 2 do
    if string.sub(flat[i], 1, 2) == 'u:' then
      users[#users + 1] = flat[i]
      times[#times + 1] = tonumber(flat[i + 1])
    end
  end
  local lo = 1
  for hi = 1, #times do
    while times[hi] - times[lo] > recent do lo = lo + 1 end
    if hi - lo + 1 > most then most = hi - lo + 1 end
  end
end
local out = {bu, ba, au, aa, most, #users}
for _, a in ipairs(users) do out[#out + 1] = a end
for _, a in ipairs(members) do out[#out + 1] = a end
return out
"""

# One cohort: a sorted set of "<part>\\t<actor>" -> when. Parts: the address for a
# content's blind likes and for its one-off devices (with "!<tenth of a second>" for a device
# that stopped at the count, and where), the device for an address's accounts on
# devices that switch accounts. ARGV: now, window, cap, op ("add" or "del"), part,
# actor, t, by. An actor is in a cohort once (a flagged add replaces the plain one).
# "add" returns the crowd before and after, the flagged in it before and after, then
# the crowd's actors ("!" before a flagged one). The crowd: with ``by``, the members
# of part ``by`` (flagged or not); without, the distinct parts. "del" takes the actor
# out wherever it is and returns nothing.
COHORT = """
local m = KEYS[1]
local now, window, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local op, part, actor, t, by = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
redis.call('ZREMRANGEBYSCORE', m, '-inf', '(' .. (now - window))
local function among()
  local out, parts, n, flagged, same, most = {}, {}, 0, 0, {}, 0
  local flag = by .. '!'
  for _, x in ipairs(redis.call('ZRANGE', m, 0, -1)) do
    local p, a = string.match(x, '^([^\\t]*)\\t(.*)$')
    if p and (by == '' or p == by or string.sub(p, 1, #flag) == flag) then
      if by ~= '' and p ~= by then
        -- Flagged; what follows "!" is where it stopped. Both counts leave out the
        -- largest group that stopped at one place: the end of the content, where
        -- everyone who watches it whole stops.
        flagged = flagged + 1
        local k = string.sub(p, #flag + 1)
        same[k] = (same[k] or 0) + 1
        if same[k] > most then most = same[k] end
        a = '!' .. a
      end
      out[#out + 1] = a
      if not parts[p] then
        parts[p] = true
        n = n + 1
      end
    end
  end
  if by ~= '' then n = #out end
  return out, n - most, flagged - most
end
local function remove()
  local gone = {}
  local suffix = '\\t' .. actor
  for _, x in ipairs(redis.call('ZRANGE', m, 0, -1)) do
    if string.sub(x, -#suffix) == suffix then gone[#gone + 1] = x end
  end
  if #gone > 0 then redis.call('ZREM', m, unpack(gone)) end
end
if op == 'del' then
  remove()
  return {}
end
local _, before, fbefore = among()
if by ~= '' and part ~= by then
  redis.call('ZREM', m, by .. '\\t' .. actor)
end
redis.call('ZADD', m, 'GT', t, part .. '\\t' .. actor)
redis.call('ZREMRANGEBYRANK', m, 0, -(cap + 1))
redis.call('PEXPIRE', m, window)
local members, after, fafter = among()
local out = {before, after, fbefore, fafter}
for _, a in ipairs(members) do out[#out + 1] = a end
return out
"""

# One address: KEYS members, then h account sketches and h device sketches (oldest
# hour first, the current one last). ARGV: now, window, cap, h, na, accounts...,
# nd, devices..., n, (actor, t) * n. Returns accounts and devices before and
# after, then the members.
ADDRESS = """
local m = KEYS[1]
local now, window, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = tonumber(ARGV[4])
local acct, devs = {}, {}
for i = 1, h do
  acct[i] = KEYS[1 + i]
  devs[i] = KEYS[1 + h + i]
end
local ba = redis.call('PFCOUNT', unpack(acct))
local bd = redis.call('PFCOUNT', unpack(devs))
local pos = 5
local na = tonumber(ARGV[pos]); pos = pos + 1
if na > 0 then
  redis.call('PFADD', acct[h], unpack(ARGV, pos, pos + na - 1))
  redis.call('PEXPIRE', acct[h], window + 3600000)
end
pos = pos + na
local nd = tonumber(ARGV[pos]); pos = pos + 1
if nd > 0 then
  redis.call('PFADD', devs[h], unpack(ARGV, pos, pos + nd - 1))
  redis.call('PEXPIRE', devs[h], window + 3600000)
end
pos = pos + nd
local nm = tonumber(ARGV[pos]); pos = pos + 1
for i = 0, nm - 1 do
  redis.call('ZADD', m, 'GT', ARGV[pos + 2 * i + 1], ARGV[pos + 2 * i])
end
redis.call('ZREMRANGEBYSCORE', m, '-inf', '(' .. (now - window))
redis.call('ZREMRANGEBYRANK', m, 0, -(cap + 1))
redis.call('PEXPIRE', m, window)
local out = {ba, bd, redis.call('PFCOUNT', unpack(acct)), redis.call('PFCOUNT', unpack(devs))}
for _, a in ipairs(redis.call('ZRANGE', m, 0, -1)) do out[#out + 1] = a end
return out
"""

# One actor's features. KEYS f, s, so, g. ARGV: now, bucket ms, window, group
# window, peak buckets, n notes, (field, value) * n. Returns the window sums of
# METRICS, the peaks of PEAKS (the most in any run of that many consecutive
# buckets), the most sessions on one content, the most sessions of one shape, the
# most reloads on one content, the most addresses one session was sent again from,
# the last trust ("" if none), then (field, value) of every live note.
READ = """
local f, s, so, g = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, bms = tonumber(ARGV[1]), tonumber(ARGV[2])
local win, group_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local span = tonumber(ARGV[5])
local oldest = now - win
local metrics = {%(metrics)s}
local peaks = {%(peaks)s}
local peaked = {}
for _, m in ipairs(peaks) do peaked[m] = {} end
local nn = tonumber(ARGV[6])
for i = 0, nn - 1 do redis.call('HSET', f, ARGV[7 + 2 * i], ARGV[8 + 2 * i]) end
local sums, tops = {}, {}
local notes = {}
local stale = {}
local last = ''
local flat = redis.call('HGETALL', f)
for i = 1, #flat, 2 do
  local k, v = flat[i], flat[i + 1]
  if k == 't' then
    last = v
  elseif string.sub(k, 1, 2) == 'n:' then
    local ts = tonumber(string.match(v, ',(%-?%d+)$'))
    if not ts or ts < now - group_ms then
      stale[#stale + 1] = k
    else
      notes[#notes + 1] = k
      notes[#notes + 1] = v
    end
  else
    local m, b = string.match(k, '^(%a+):(%-?%d+)$')
    if m then
      if tonumber(b) * bms < oldest then
        stale[#stale + 1] = k
      else
        local x = tonumber(v)
        sums[m] = (sums[m] or 0) + x
        if peaked[m] then peaked[m][tonumber(b)] = x end
      end
    end
  end
end
-- The most in any span of consecutive buckets: each bucket ends one span.
for m, per in pairs(peaked) do
  local top = 0
  for b in pairs(per) do
    local t = 0
    for j = 0, span - 1 do t = t + (per[b - j] or 0) end
    if t > top then top = t end
  end
  tops[m] = top
end
for i = 1, #stale, 500 do redis.call('HDEL', f, unpack(stale, i, math.min(i + 499, #stale))) end
local per_content, most = {}, 0
local reloads_of, reloads, replays = {}, 0, 0
-- A state's fields 11 and 12 (absent from states written before them).
local tail = '^[^\\t]*' .. string.rep('\\t[^\\t]*', 9) .. '\\t([^\\t]*)\\t([^\\t]*)$'
local sids = redis.call('ZRANGEBYSCORE', so, oldest, '+inf')
for i = 1, #sids, 500 do
  local states = redis.call('HMGET', s, unpack(sids, i, math.min(i + 499, #sids)))
  for _, st in ipairs(states) do
    if st then
      local content = string.match(st, '^([^\\t]*)')
      local n = (per_content[content] or 0) + 1
      per_content[content] = n
      if n > most then most = n end
      local reload, again = string.match(st, tail)
      if reload == '1' then
        local r = (reloads_of[content] or 0) + 1
        reloads_of[content] = r
        if r > reloads then reloads = r end
      end
      if again and tonumber(again) and tonumber(again) > replays then replays = tonumber(again) end
    end
  end
end
local repeats = 0
local shapes = redis.call('HGETALL', g)
for i = 1, #shapes, 2 do
  local oc, ot = string.match(shapes[i + 1], '^(%d+),(%-?%d+)$')
  if oc and tonumber(ot) >= oldest and tonumber(oc) > repeats then repeats = tonumber(oc) end
end
local out = {}
for _, m in ipairs(metrics) do out[#out + 1] = sums[m] or 0 end
for _, m in ipairs(peaks) do out[#out + 1] = tops[m] or 0 end
out[#out + 1] = most
out[#out + 1] = repeats
out[#out + 1] = reloads
out[#out + 1] = replays
out[#out + 1] = last
for _, x in ipairs(notes) do out[#out + 1] = x end
return out
""".replace("%(metrics)s", ", ".join(f"'{m}'" for m in METRICS)).replace(
    "%(peaks)s", ", ".join(f"'{m}'" for m in PEAKS)
)


@dataclass(frozen=True, slots=True)
class ActorEvent:
    """One event as the actor's script takes it."""

    token: str
    code: str  # LIKE, UNLIKE, VIEW, RAW, END, REPLAY
    t_ms: int
    content_id: str
    session_id: str = ""
    watched_ms: int = 0
    accepted_ms: int = 0
    position_ms: int | None = None
    visible_fraction: float | None = None
    final: bool = False

    def args(self) -> list[Any]:
        return [
            self.token,
            self.code,
            self.t_ms,
            self.content_id,
            self.session_id,
            self.watched_ms,
            self.accepted_ms,
            "" if self.position_ms is None else self.position_ms,
            "" if self.visible_fraction is None else repr(float(self.visible_fraction)),
            "1" if self.final else "0",
        ]


@dataclass(slots=True)
class Batch:
    """What one batch of the log records: per actor its events (in time order), per
    device and per address the actors seen there (actor -> latest event time)."""

    actors: dict[str, list[ActorEvent]] = field(default_factory=dict)
    devices: dict[str, dict[str, int]] = field(default_factory=dict)
    addresses: dict[str, dict[str, int]] = field(default_factory=dict)
    # (actor, content) -> the address of its latest event on it in the batch.
    content_addresses: dict[tuple[str, str], str] = field(default_factory=dict)
    # device -> the addresses it was seen behind in the batch.
    device_addresses: dict[str, set[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupChange:
    """A device's, address's, signature's or cohort's aggregates before and after a
    write (names: "accounts", "devices", "actors"), and its actors (newest
    GROUP_CAP); for a device also the most accounts seen within a peak window
    (``after["recent"]``) and its signed-in members (``accounts``)."""

    before: Mapping[str, int]
    after: Mapping[str, int]
    members: tuple[str, ...]
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CohortOp:
    """Put ``actor`` in a cohort (``add``, as ``part``: an address, a device) or take
    it out of it wherever it is (``del``). ``by``: whose members the crowd counts
    ("" for all)."""

    cohort: str
    op: str  # "add" | "del"
    part: str
    actor: str
    t_ms: int
    by: str = ""
    window_ms: int = 0


@dataclass(frozen=True, slots=True)
class Recorded:
    applied: int  # events applied (not applied before)
    devices: dict[str, GroupChange]
    addresses: dict[str, GroupChange]
    signatures: dict[str, list[str]]  # actor -> playback signatures its sessions ended with
    # actor -> (mark, content): "l" a blind like (no view event of the content);
    # "u" an earlier blind like whose content it has since opened; "o" its only
    # session ended (a one-off, so far); "h" ... and stopped at the count; "x" a
    # second session: the first was no one-off after all.
    marks: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActorState:
    features: Features
    last: str | None  # what remember() last stored as "t" for the actor
    notes: dict[str, str]  # "n:<kind>:<id>" -> "v,...,ts"


def _signature(played: str) -> str:
    """A playback signature's name: a digest of its content and reported shape."""
    return hashlib.sha1(played.encode(), usedforsecurity=False).hexdigest()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisIntegrity:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        windows: Windows | None = None,
        dedupe_horizon_ms: int = 3_600_000,
    ) -> None:
        self._r = client
        self._keys = keys
        self._windows = windows or Windows()
        self._horizon = dedupe_horizon_ms
        self._scripts = {
            name: PipelinedScript(src)
            for name, src in (
                ("record", RECORD),
                ("group", GROUP),
                ("cohort", COHORT),
                ("address", ADDRESS),
                ("read", READ),
            )
        }
        self._loaded = False

    @property
    def keys(self) -> Keys:
        return self._keys

    @property
    def windows(self) -> Windows:
        return self._windows

    async def load_scripts(self) -> None:
        """At start-up, so no batch pays for it (and again after NOSCRIPT)."""
        for script in self._scripts.values():
            await script.load(self._r)
        self._loaded = True

    async def _run(self, commands: list[tuple[str, Sequence[str], Sequence[Any]]]) -> list[Any]:
        """Script calls (name, keys, args) in one pipeline: one round trip. After a
        Redis restart (NOSCRIPT) the scripts are loaded and the whole pipeline sent
        again: every call in it is idempotent (tokens, set members, HLL adds)."""
        if not self._loaded:
            await self.load_scripts()
        for attempt in range(2):
            pipe = self._r.pipeline(transaction=False)
            for name, keys, args in commands:
                # Routed by its keys on a cluster (storage/redis_scripts.py).
                pipe.execute_command("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args)
            try:
                return list(await pipe.execute())
            except NoScriptError:
                if attempt:
                    raise
                await self.load_scripts()
        raise AssertionError("unreachable")

    def _hours(self, now_ms: int) -> list[int]:
        current = now_ms // 3_600_000
        return list(range(current - self._windows.group_hours + 1, current + 1))

    async def record(
        self,
        batch: Batch,
        now_ms: int,
        remember: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Recorded:
        """Apply a batch, effectively once, in one round trip. ``remember``: actor ->
        fields to store in its hash (notes, last trust) that the previous batch
        learnt after its own writes; they ride along here."""
        w = self._windows
        keys = self._keys
        commands: list[tuple[str, Sequence[str], Sequence[Any]]] = []
        # The actor script with no events: it only stores, trims and expires.
        order = list(dict.fromkeys([*batch.actors, *(remember or {})]))
        for actor in order:
            events = batch.actors.get(actor, [])
            args: list[Any] = [
                now_ms,
                w.bucket_ms,
                w.actor_ms,
                self._horizon,
                SHORT_SEGMENT_MS,
                INVISIBLE_BELOW,
                SESSIONS_CAP,
                CONTENTS_CAP,
                SHAPES_CAP,
                SHAPE_EVENTS,
                INTERVAL_QUANTUM_MS,
                w.group_ms,
                HUG_SHARE,
                CROWD_MIN_WATCH_MS,
                len(events),
            ]
            for e in events:
                args += e.args()
            fields = (remember or {}).get(actor, {})
            args.append(len(fields))
            for k, v in fields.items():
                args += [k, v]
            commands.append(("record", keys.integrity_actor(actor), args))
        devices = list(batch.devices)
        for device in devices:
            seen = batch.devices[device]
            flat = [x for actor, t in seen.items() for x in (actor, t)]
            commands.append(
                (
                    "group",
                    [keys.integrity_device(device)],
                    [now_ms, w.group_ms, GROUP_CAP, w.peak_ms, len(seen), *flat],
                )
            )
        addresses = list(batch.addresses)
        hours = self._hours(now_ms)
        for addr in addresses:
            seen = batch.addresses[addr]
            sketches = [keys.integrity_address_sketches(addr, h) for h in hours]
            accounts = sorted(a for a in seen if a.startswith("u:"))
            anonymous = sorted(a for a in seen if a.startswith("d:"))
            flat = [x for actor, t in seen.items() for x in (actor, t)]
            commands.append(
                (
                    "address",
                    [
                        keys.integrity_address(addr),
                        *[a for a, _ in sketches],
                        *[d for _, d in sketches],
                    ],
                    [
                        now_ms,
                        w.group_ms,
                        GROUP_CAP,
                        len(hours),
                        len(accounts),
                        *accounts,
                        len(anonymous),
                        *anonymous,
                        len(seen),
                        *flat,
                    ],
                )
            )
        replies = await self._run(commands)
        applied = 0
        signatures: dict[str, list[str]] = {}
        marks: dict[str, list[tuple[str, str]]] = {}
        for actor, reply in zip(order, replies, strict=False):
            applied += int(reply[0])
            for item in (_text(x) for x in reply[1:]):
                if item[:1] == "s":
                    signatures.setdefault(actor, []).append(_signature(item[1:]))
                else:
                    marks.setdefault(actor, []).append((item[:1], item[1:]))
        rest = replies[len(order) :]
        out_devices = {
            d: _group(r, ("accounts", "actors")) for d, r in zip(devices, rest, strict=False)
        }
        rest = rest[len(devices) :]
        out_addresses = {
            a: _group(r, ("accounts", "devices")) for a, r in zip(addresses, rest, strict=True)
        }
        return Recorded(applied, out_devices, out_addresses, signatures, marks)

    async def read(
        self,
        actors: Sequence[str],
        notes: Mapping[str, Mapping[str, str]],
        signatures: Mapping[str, Mapping[str, int]],
        now_ms: int,
        cohorts: Sequence[CohortOp] = (),
    ) -> tuple[dict[str, ActorState], dict[str, GroupChange], list[GroupChange | None]]:
        """One round trip: register ``signatures`` (signature -> actor -> when) and
        read their crowds; apply the ``cohorts`` operations (each ``add`` answers
        with its crowd, in order; ``del`` with None); store each actor's ``notes``
        and read its features."""
        w = self._windows
        keys = self._keys
        commands: list[tuple[str, Sequence[str], Sequence[Any]]] = []
        sig_order = list(signatures)
        for sig in sig_order:
            seen = signatures[sig]
            flat = [x for actor, t in seen.items() for x in (actor, t)]
            commands.append(
                (
                    "group",
                    [keys.integrity_signature(sig)],
                    [now_ms, w.group_ms, GROUP_CAP, 0, len(seen), *flat],
                )
            )
        for c in cohorts:
            commands.append(
                (
                    "cohort",
                    [keys.integrity_cohort(c.cohort)],
                    [
                        now_ms,
                        c.window_ms or w.group_ms,
                        GROUP_CAP,
                        c.op,
                        c.part,
                        c.actor,
                        c.t_ms,
                        c.by,
                    ],
                )
            )
        order = list(dict.fromkeys(actors))
        for actor in order:
            _, f, s, so, _, g = keys.integrity_actor(actor)
            given = notes.get(actor, {})
            flat_notes = [x for k, v in given.items() for x in (k, v)]
            commands.append(
                (
                    "read",
                    [f, s, so, g],
                    [
                        now_ms,
                        w.bucket_ms,
                        w.actor_ms,
                        w.group_ms,
                        w.peak_ms // w.bucket_ms,
                        len(given),
                        *flat_notes,
                    ],
                )
            )
        replies = await self._run(commands)
        crowds = {
            sig: _group(r, ("accounts", "actors"))
            for sig, r in zip(sig_order, replies, strict=False)
        }
        rest = replies[len(sig_order) :]
        joined: list[GroupChange | None] = [
            _crowd(r) if c.op == "add" else None
            for c, r in zip(cohorts, rest[: len(cohorts)], strict=True)
        ]
        states = {
            actor: _state(actor, r, w.peak_ms)
            for actor, r in zip(order, rest[len(cohorts) :], strict=True)
        }
        return states, crowds, joined


def _group(reply: Sequence[Any], names: tuple[str, str]) -> GroupChange:
    """GROUP's answer (ADDRESS's has no recent accounts)."""
    b1, b2, a1, a2 = (int(x) for x in reply[:4])
    if names[1] == "actors":
        most, n = int(reply[4]), int(reply[5])
        return GroupChange(
            before={names[0]: b1, names[1]: b2},
            after={names[0]: a1, names[1]: a2, "recent": most},
            members=tuple(_text(x) for x in reply[6 + n :]),
            accounts=tuple(_text(x) for x in reply[6 : 6 + n]),
        )
    return GroupChange(
        before={names[0]: b1, names[1]: b2},
        after={names[0]: a1, names[1]: a2},
        members=tuple(_text(x) for x in reply[4:]),
    )


def _crowd(reply: Sequence[Any]) -> GroupChange:
    """COHORT's answer to an add."""
    return GroupChange(
        before={"actors": int(reply[0]), "flagged": int(reply[2])},
        after={"actors": int(reply[1]), "flagged": int(reply[3])},
        members=tuple(_text(x) for x in reply[4:]),
    )


def note_values(value: str) -> tuple[list[int], int]:
    """A note's values and its time."""
    parts = [int(p) for p in value.split(",")]
    return parts[:-1], parts[-1]


def _state(actor: str, reply: Sequence[Any], peak_ms: int) -> ActorState:
    n = len(METRICS)
    sums = dict(zip(METRICS, (int(x) for x in reply[:n]), strict=True))
    peaks = dict(zip(PEAKS, (int(x) for x in reply[n : n + len(PEAKS)]), strict=True))
    pos = n + len(PEAKS)
    most, repeats = int(reply[pos]), int(reply[pos + 1])
    reloads, replays = int(reply[pos + 2]), int(reply[pos + 3])
    last = _text(reply[pos + 4]) or None
    flat = [_text(x) for x in reply[pos + 5 :]]
    notes = dict(zip(flat[0::2], flat[1::2], strict=True))
    device_accounts = address_accounts = address_devices = crowd = 0
    device_recent = blind_crowd = switching = one_off = hugging = 0
    for name, value in notes.items():
        values, _ = note_values(value)
        kind = name[2:3]
        if not values:
            continue
        if kind == "d":
            device_accounts = max(device_accounts, values[0])
            if len(values) > 1:
                device_recent = max(device_recent, values[1])
        elif kind == "k":
            blind_crowd = max(blind_crowd, values[0])
        elif kind == "w":
            switching = max(switching, values[0])
        elif kind == "o" and len(values) > 2 and values[2] and values[0] > hugging:
            # Only a device that stopped at the count itself is held to its crowd.
            hugging, one_off = values[0], values[1]
        elif kind == "i":
            address_accounts = max(address_accounts, values[0])
            address_devices = max(address_devices, values[-1])
        elif kind == "s":
            crowd = max(crowd, values[0])
    features = Features(
        actor=actor,
        peak_ms=peak_ms,
        likes=sums["lk"],
        likes_peak=peaks["lk"],
        blind_likes=sums["bl"],
        glance_likes=sums["gl"],
        unlikes=sums["ul"],
        views=sums["vw"],
        views_peak=peaks["vw"],
        watch_ms_peak=peaks["wm"],
        raw_events=sums["rw"],
        impossible_events=sums["im"],
        visibility_events=sums["vf"],
        invisible_events=sums["nv"],
        positioned_events=sums["pe"],
        stalled_events=sums["st"],
        segments=sums["sg"],
        short_segments=sums["sh"],
        sessions=sums["ss"],
        max_content_sessions=most,
        max_signature_repeats=repeats,
        max_content_reloads=reloads,
        max_session_replays=replays,
        signature_crowd=crowd,
        device_accounts=device_accounts,
        device_recent_accounts=device_recent,
        address_accounts=address_accounts,
        address_devices=address_devices,
        blind_crowd=blind_crowd,
        switching_devices=switching,
        one_off_crowd=one_off,
        one_off_hugging=hugging,
    )
    return ActorState(features, last, notes)
