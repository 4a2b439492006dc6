"""The integrity worker's windowed features in Redis (docs/INTEGRITY.md, "Detection").

Per actor (keys with the actor's hash tag, storage/keys.py ``integrity_actor``):

* ``ap`` sorted set: tokens applied (score: when), trimmed to the dedupe horizon;
* ``f`` hash: counters per time bucket (``"<metric>:<bucket>"``), the notes the
  worker left about the actor's groups (``"n:<d|i|s>:<id>"`` = ``"v,...,ts"``:
  a device's accounts; an address's accounts and anonymous devices; a playback
  signature's crowd) and the last trust it reported (``"t"``);
* ``s`` hash and ``so`` sorted set: the actor's sessions (content, first and last
  event, events, furthest position, playback shape so far) by last event;
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

# Event codes for the actor script.
LIKE = "L"  # a reaction added (none -> some)
UNLIKE = "U"  # a reaction removed
VIEW = "V"  # a counted view
RAW = "R"  # a view event
END = "E"  # a view session ended

# Metrics (bucketed counter fields), in the order READ returns them.
METRICS = ("lk", "bl", "ul", "vw", "rw", "im", "vf", "nv", "pe", "st", "sg", "sh", "ss", "wm")
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
local n = tonumber(ARGV[13])
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
local function finish(sid, st, t)
  -- st: content, first, last, n, pmax, shape, watched, ended
  if st[8] == '1' then return end
  st[8] = '1'
  if tonumber(st[7]) <= 0 then return end
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
  local reported = string.gsub(st[6], '/%-?%d+', '')
  shapes[#shapes + 1] = st[1] .. '\\t' .. st[4] .. '|' .. reported .. '|' .. st[5]
end

local fresh = {}
local applied = 0
for i = 0, n - 1 do
  local p = 14 + i * 10
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
      local seen = redis.call('ZSCORE', c, content)
      if not seen or tonumber(seen) < t - win then inc('bl', t, 1) end
    elseif code == 'U' then
      inc('ul', t, 1)
    elseif code == 'V' then
      inc('vw', t, 1)
      redis.call('ZADD', c, 'GT', t, content)
    elseif code == 'R' then
      inc('rw', t, 1)
      redis.call('ZADD', c, 'GT', t, content)
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
              tostring(watched), tostring(math.max(accepted, 0)), '0'}
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
    end
  end
end
for token, ok in pairs(fresh) do
  if ok then redis.call('ZADD', ap, now, token) end
end
-- Fields the worker asks to keep (notes about the actor's groups, its last trust).
local pr = 14 + n * 10
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
for _, sh in ipairs(shapes) do out[#out + 1] = sh end
return out
"""

# One group (a device's or a signature's actors): add members, keep the window and
# the newest ``cap``; returns signed-in and all members before and after, then the
# members. ARGV: now, window, cap, n, (actor, t) * n.
GROUP = """
local m = KEYS[1]
local now, window, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function counts(list)
  local users = 0
  for _, a in ipairs(list) do
    if string.sub(a, 1, 2) == 'u:' then users = users + 1 end
  end
  return users, #list
end
local bu, ba = counts(redis.call('ZRANGEBYSCORE', m, now - window, '+inf'))
for i = 0, tonumber(ARGV[4]) - 1 do
  redis.call('ZADD', m, 'GT', ARGV[6 + 2 * i], ARGV[5 + 2 * i])
end
redis.call('ZREMRANGEBYSCORE', m, '-inf', '(' .. (now - window))
redis.call('ZREMRANGEBYRANK', m, 0, -(cap + 1))
redis.call('PEXPIRE', m, window)
local members = redis.call('ZRANGE', m, 0, -1)
local au, aa = counts(members)
local out = {bu, ba, au, aa}
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
# last trust ("" if none), then (field, value) of every live note.
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
local sids = redis.call('ZRANGEBYSCORE', so, oldest, '+inf')
for i = 1, #sids, 500 do
  local states = redis.call('HMGET', s, unpack(sids, i, math.min(i + 499, #sids)))
  for _, st in ipairs(states) do
    if st then
      local content = string.match(st, '^([^\\t]*)')
      local n = (per_content[content] or 0) + 1
      per_content[content] = n
      if n > most then most = n end
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
    code: str  # LIKE, UNLIKE, VIEW, RAW, END
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


@dataclass(frozen=True, slots=True)
class GroupChange:
    """A device's, address's or signature's aggregates before and after a write
    (names: "accounts", "devices", "actors"), and its actors (newest GROUP_CAP)."""

    before: Mapping[str, int]
    after: Mapping[str, int]
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recorded:
    applied: int  # events applied (not applied before)
    devices: dict[str, GroupChange]
    addresses: dict[str, GroupChange]
    signatures: dict[str, list[str]]  # actor -> playback signatures its sessions ended with


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
                    [now_ms, w.group_ms, GROUP_CAP, len(seen), *flat],
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
        for actor, reply in zip(order, replies, strict=False):
            applied += int(reply[0])
            if len(reply) > 1:
                signatures[actor] = [_signature(_text(x)) for x in reply[1:]]
        rest = replies[len(order) :]
        out_devices = {
            d: _group(r, ("accounts", "actors")) for d, r in zip(devices, rest, strict=False)
        }
        rest = rest[len(devices) :]
        out_addresses = {
            a: _group(r, ("accounts", "devices")) for a, r in zip(addresses, rest, strict=True)
        }
        return Recorded(applied, out_devices, out_addresses, signatures)

    async def read(
        self,
        actors: Sequence[str],
        notes: Mapping[str, Mapping[str, str]],
        signatures: Mapping[str, Mapping[str, int]],
        now_ms: int,
    ) -> tuple[dict[str, ActorState], dict[str, GroupChange]]:
        """One round trip: register ``signatures`` (signature -> actor -> when) and
        read their crowds; store each actor's ``notes`` and read its features."""
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
                    [now_ms, w.group_ms, GROUP_CAP, len(seen), *flat],
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
        states = {
            actor: _state(actor, r, w.peak_ms)
            for actor, r in zip(order, replies[len(sig_order) :], strict=True)
        }
        return states, crowds


def _group(reply: Sequence[Any], names: tuple[str, str]) -> GroupChange:
    b1, b2, a1, a2 = (int(x) for x in reply[:4])
    return GroupChange(
        before={names[0]: b1, names[1]: b2},
        after={names[0]: a1, names[1]: a2},
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
    last = _text(reply[pos + 2]) or None
    flat = [_text(x) for x in reply[pos + 3 :]]
    notes = dict(zip(flat[0::2], flat[1::2], strict=True))
    device_accounts = address_accounts = address_devices = crowd = 0
    for name, value in notes.items():
        values, _ = note_values(value)
        kind = name[2:3]
        if not values:
            continue
        if kind == "d":
            device_accounts = max(device_accounts, values[0])
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
        signature_crowd=crowd,
        device_accounts=device_accounts,
        address_accounts=address_accounts,
        address_devices=address_devices,
    )
    return ActorState(features, last, notes)
