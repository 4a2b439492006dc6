"""Redis side of counter snapshots: capture a content's counters and HyperLogLog,
tell which events the capture included, install a snapshot back, and the queue
of contents changed since their last snapshot.

A capture opens a window on the counters hash (`_snap`: until when, `_snapid`:
whose): while it is open, the aggregator's apply script notes every event it
applies to that content as `_s:<event id>`. ``finish`` then answers, for event
ids the snapshotter read from MongoDB after the capture, which were applied
before it: applied now (in the partition's applied set) and not noted since.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from domain.ports import Capture
from storage.keys import Keys
from storage.redis_counters import INSTALL, parse_counters
from storage.redis_scripts import PipelinedScript

# How long a capture's window stays open at most; the snapshotter reads MongoDB
# within it (a slower read finds the window closed and gives up on the content).
WINDOW_MS = 60_000

# KEYS: counters, uniques. ARGV: open until (ms), capture id. Returns false when
# the counters are absent, else {flat public+bookkeeping fields, registers hex}.
# The registers go as hex: the client decodes replies as UTF-8, and a dense
# HyperLogLog is 12 KB of arbitrary bytes.
CAPTURE = """
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return false end
local keep, stale = {}, {}
for j = 1, #flat, 2 do
  local k = flat[j]
  if string.sub(k, 1, 3) == '_s:' or k == '_snap' or k == '_snapid' then
    stale[#stale + 1] = k
  else
    keep[#keep + 1] = k
    keep[#keep + 1] = flat[j + 1]
  end
end
-- A capture left open by a snapshotter that died: its notes go.
for i = 1, #stale, 500 do
  redis.call('HDEL', KEYS[1], unpack(stale, i, math.min(i + 499, #stale)))
end
redis.call('HSET', KEYS[1], '_snap', ARGV[1], '_snapid', ARGV[2])
local raw = redis.call('GET', KEYS[2])
local hex = ''
if raw then
  local parts = {}
  for i = 1, #raw, 200 do
    local chunk = string.sub(raw, i, i + 199)
    parts[#parts + 1] = string.format(string.rep('%02x', #chunk), string.byte(chunk, 1, -1))
  end
  hex = table.concat(parts)
end
return {keep, hex}
"""

# KEYS: counters, applied set. ARGV: capture id, now (ms), event ids... Closes the
# capture. Returns false when it is no longer ours or has lapsed (the counters
# were replaced, another capture began, or the window closed: the notes are then
# incomplete), else the ids applied before the capture.
FINISH = """
local st = redis.call('HMGET', KEYS[1], '_snap', '_snapid')
local ok = st[2] == ARGV[1] and tonumber(st[1] or '0') > tonumber(ARGV[2])
local out = {}
if ok then
  for j = 3, #ARGV do
    local eid = ARGV[j]
    if redis.call('ZSCORE', KEYS[2], eid)
        and redis.call('HEXISTS', KEYS[1], '_s:' .. eid) == 0 then
      out[#out + 1] = eid
    end
  end
end
if st[2] == ARGV[1] then
  local flat = redis.call('HKEYS', KEYS[1])
  local notes = {'_snap', '_snapid'}
  for _, k in ipairs(flat) do
    if string.sub(k, 1, 3) == '_s:' then notes[#notes + 1] = k end
  end
  for i = 1, #notes, 500 do
    redis.call('HDEL', KEYS[1], unpack(notes, i, math.min(i + 499, #notes)))
  end
end
if not ok then return false end
return out
"""

# As the reconcile queue's TAKE (storage/redis_reconcile_queue.py), on the
# snapshot set: oldest first, at most ARGV[2], touched no later than ARGV[1].
TAKE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
"""


class RedisCounterSnapshots:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        *,
        window_ms: int = WINDOW_MS,
        wall_clock: Any = time.time,
    ) -> None:
        self._r = client
        self._keys = keys
        self._window_ms = window_ms
        # The apply script compares `_snap` with the aggregator's wall clock, not the
        # domain clock (which tests move).
        self._wall = wall_clock
        self._capture = client.register_script(CAPTURE)
        self._finish = client.register_script(FINISH)
        self._install = client.register_script(INSTALL)
        self._take = PipelinedScript(TAKE)

    async def capture(self, content_id: str) -> Capture | None:
        token = uuid.uuid4().hex
        until = int(self._wall() * 1000) + self._window_ms
        keys = [self._keys.counters(content_id), self._keys.uniques(content_id)]
        reply = await self._capture(keys=keys, args=[until, token])
        if not reply:
            return None
        flat, hex_registers = reply
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        return Capture(
            token=token,
            counters=parse_counters(raw),
            registers=bytes.fromhex(hex_registers),
            asof_ms=int(raw.get("_asof", 0)),
        )

    async def finish(
        self, content_id: str, token: str, event_ids: Sequence[str]
    ) -> frozenset[str] | None:
        partition = self._keys.partition(content_id)
        keys = [self._keys.counters(content_id), self._keys.applied(partition)]
        now = int(self._wall() * 1000)
        reply = await self._finish(keys=keys, args=[token, now, *event_ids])
        if reply is None or reply is False:
            return None
        return frozenset(str(e) for e in reply)

    async def install(
        self,
        content_id: str,
        counters: Mapping[str, int],
        registers: bytes,
        members: Sequence[str],
        asof_ms: int,
        *,
        replace: bool,
    ) -> int | None:
        args: list[Any] = ["1" if replace else "0", asof_ms, len(counters)]
        for name, value in counters.items():
            args += [name, value]
        args.append(registers)
        args += list(members)
        keys = [self._keys.counters(content_id), self._keys.uniques(content_id)]
        installed, uniques = await self._install(keys=keys, args=args)
        return int(uniques) if installed else None

    async def take_changed(self, before_ms: int, limit: int) -> list[str]:
        parts = self._keys.partitions
        each = max(1, math.ceil(limit / parts))
        calls = [([self._keys.snapshot_touched(p)], [before_ms, each]) for p in range(parts)]
        replies = await self._take.run_many(self._r, calls)
        return [str(cid) for reply in replies for cid in reply]

    async def requeue(self, content_ids: Sequence[str], at_ms: int) -> None:
        if not content_ids:
            return
        pipe = self._r.pipeline(transaction=False)
        for cid in content_ids:
            pipe.zadd(self._keys.snapshot_touched(self._keys.partition(cid)), {cid: at_ms})
        await pipe.execute()
