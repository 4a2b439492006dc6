"""Hot counters in Redis: applied effectively once by a Lua script per batch."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from domain.events import EngagementEvent
from domain.ports import CounterReading
from storage.keys import Keys
from storage.redis_scripts import Call, PipelinedScript, grouped

# Applies a partition's batch atomically. For each event: remember its id in the
# partition's applied set (ZADD NX); only a first sighting changes counters, so a
# redelivered or republished event never counts twice. Counters that do not exist
# (evicted, flushed) are left absent: the next read recounts them from MongoDB,
# which already holds every event's effect. Events no newer than the counters'
# `_asof` (the time of their last recount) are already included in them. Changed
# contents are noted in the partition's touched set (the key before last), which
# the reconciler checks first, and in its snapshot set (the last key), which the
# snapshotter takes. While a snapshot capture is open on a content (`_snap`: until
# when), each event applied to it is noted as `_s:<id>`, so the snapshotter can
# tell the events its capture included from those applied after it
# (storage/redis_counter_snapshots.py).
APPLY = """
local applied = KEYS[1]
local touched = KEYS[#KEYS - 1]
local snaptouched = KEYS[#KEYS]
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', applied, '-inf', now - tonumber(ARGV[2]))
local pos = 4
local out = {}
for i = 1, tonumber(ARGV[3]) do
  local cnt, uv = KEYS[2 * i], KEYS[2 * i + 1]
  local n = tonumber(ARGV[pos]); pos = pos + 1
  local exists = redis.call('EXISTS', cnt) == 1
  local asof, snap = 0, 0
  if exists then
    local st = redis.call('HMGET', cnt, '_asof', '_snap')
    asof, snap = tonumber(st[1] or '0'), tonumber(st[2] or '0')
  end
  local capturing = snap > now
  local changed = false
  for _ = 1, n do
    local eid, ts = ARGV[pos], tonumber(ARGV[pos + 1])
    local uniq, nf = ARGV[pos + 2], tonumber(ARGV[pos + 3])
    pos = pos + 4
    local fresh = redis.call('ZADD', applied, 'NX', now, eid) == 1
    if fresh and capturing then redis.call('HSET', cnt, '_s:' .. eid, 1) end
    if fresh and exists and ts > asof then
      for k = 0, nf - 1 do
        redis.call('HINCRBY', cnt, ARGV[pos + 2 * k], ARGV[pos + 2 * k + 1])
      end
      if uniq ~= '' then redis.call('PFADD', uv, uniq) end
      changed = true
    end
    pos = pos + 2 * nf
  end
  if changed then
    -- The version orders live pushes. Floored by the clock so counters rebuilt
    -- after a flush still move past every version subscribers have seen.
    local v = tonumber(redis.call('HGET', cnt, '_v') or '0') + 1
    if v < now then v = now end
    redis.call('HSET', cnt, '_last', now, '_v', string.format('%d', v))
    -- The content id is what follows the hash tag's "}:cnt:".
    local cid = string.sub(cnt, string.find(cnt, '}:cnt:', 1, true) + 6)
    redis.call('ZADD', touched, now, cid)
    redis.call('ZADD', snaptouched, now, cid)
    out[#out + 1] = {i, redis.call('HGETALL', cnt), redis.call('PFCOUNT', uv), v}
  end
end
return out
"""

# Reads many contents of one partition (one Cluster slot) in one call, and
# whether probe events were applied. Per content, one flat array:
# {exists, _asof, _last, unique viewers, _v, field, count, field, count, ...} with
# the public fields only and every number as a Redis integer, so the reader
# gets ints from hiredis instead of parsing and filtering ~10 strings per card.
READ = """
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local flat = redis.call('HGETALL', KEYS[2 * i - 1])
  local row = {0, 0, 0, 0, 0}
  if #flat > 0 then
    row[1] = 1
    row[4] = redis.call('PFCOUNT', KEYS[2 * i])
    for j = 1, #flat, 2 do
      local k, v = flat[j], tonumber(flat[j + 1]) or 0
      if k == '_asof' then row[2] = v
      elseif k == '_last' then row[3] = v
      elseif k == '_v' then row[5] = v
      elseif string.sub(k, 1, 1) ~= '_' then
        row[#row + 1] = k
        row[#row + 1] = v
      end
    end
  end
  out[i] = row
end
local probes = {}
for j = 2, #ARGV do
  probes[j - 1] = redis.call('ZSCORE', KEYS[2 * n + 1], ARGV[j]) and 1 or 0
end
out[n + 1] = probes
return out
"""

# A recount moves the version on too (see APPLY), so a live push of the
# installed counters is never taken for an older one. ARGV: replace, asof, n,
# field, value, ..., the HyperLogLog's raw registers ("" for none: a counter
# snapshot's, storage/redis_counter_snapshots.py), members... Returns
# {installed, unique viewers}.
INSTALL = """
if ARGV[1] == '0' and redis.call('EXISTS', KEYS[1]) == 1 then return {0, 0} end
local v = tonumber(redis.call('HGET', KEYS[1], '_v') or '0') + 1
if v < tonumber(ARGV[2]) then v = tonumber(ARGV[2]) end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], '_asof', ARGV[2], '_v', string.format('%d', v))
local n = tonumber(ARGV[3])
for i = 0, n - 1 do redis.call('HSET', KEYS[1], ARGV[4 + 2 * i], ARGV[5 + 2 * i]) end
local regs = 4 + 2 * n
if ARGV[regs] ~= '' then redis.call('SET', KEYS[2], ARGV[regs]) end
local i = regs + 1
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('PFADD', KEYS[2], unpack(ARGV, i, j))
  i = j + 1
end
return {1, redis.call('PFCOUNT', KEYS[2])}
"""


def parse_counters(raw: Mapping[str, str] | Sequence[str]) -> dict[str, int]:
    """Public counter fields; ``_``-prefixed ones are bookkeeping."""
    if not isinstance(raw, Mapping):
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    return {k: int(v) for k, v in raw.items() if not k.startswith("_")}


class RedisCounters:
    def __init__(self, client: aioredis.Redis, keys: Keys, dedupe_horizon_ms: int) -> None:
        self._r = client
        self._keys = keys
        self._horizon = dedupe_horizon_ms
        self._apply = client.register_script(APPLY)
        self._install = client.register_script(INSTALL)
        self._install_many = PipelinedScript(INSTALL)
        self._read = PipelinedScript(READ)

    async def load_scripts(self) -> None:
        await self._read.load(self._r)
        await self._install_many.load(self._r)

    async def read(
        self, content_ids: Sequence[str], applied_probe: Sequence[EngagementEvent] = ()
    ) -> dict[str, CounterReading | None]:
        keys = self._keys
        ids = list(dict.fromkeys(content_ids))
        by_partition = grouped(ids, keys.partition)
        probes = grouped(list(applied_probe), lambda e: keys.partition(e.content_id))
        order = sorted(set(by_partition) | set(probes))
        calls: list[Call] = []
        for p in order:
            cids = by_partition.get(p, [])
            names = keys.counter_pairs(p, cids)
            calls.append(
                ([*names, keys.applied(p)], [len(cids), *(e.event_id for e in probes.get(p, []))])
            )
        # One round trip for any number of contents: one script call per partition.
        replies = await self._read.run_many(self._r, calls)
        applied = frozenset(
            e.event_id
            for p, reply in zip(order, replies, strict=True)
            for e, hit in zip(probes.get(p, []), reply[-1], strict=True)
            if hit
        )
        out: dict[str, CounterReading | None] = {}
        for p, reply in zip(order, replies, strict=True):
            # The reply ends with the probes' hits, after the last content's row.
            for cid, row in zip(by_partition.get(p, []), reply, strict=False):
                if not row[0]:
                    out[cid] = None
                    continue
                out[cid] = CounterReading(
                    dict(zip(row[5::2], row[6::2], strict=True)),
                    row[3],
                    applied,
                    row[1],
                    row[2],
                    row[4],
                )
        return {cid: out[cid] for cid in content_ids}

    async def apply(
        self, partition: int, events: Sequence[EngagementEvent]
    ) -> dict[str, CounterReading]:
        by_content: dict[str, list[EngagementEvent]] = {}
        for event in events:
            by_content.setdefault(event.content_id, []).append(event)
        if not by_content:
            return {}
        order = list(by_content)
        keys = [self._keys.applied(partition)]
        args: list[Any] = [int(time.time() * 1000), self._horizon, len(order)]
        for cid in order:
            keys += [self._keys.counters(cid), self._keys.uniques(cid)]
            args.append(len(by_content[cid]))
            for e in by_content[cid]:
                args += [e.event_id, e.occurred_at_ms, e.unique or "", len(e.deltas)]
                for name, delta in e.deltas.items():
                    args += [name, delta]
        keys += [self._keys.touched(partition), self._keys.snapshot_touched(partition)]
        rows = await self._apply(keys=keys, args=args)
        return {
            order[int(i) - 1]: CounterReading(parse_counters(raw), int(uv), version=int(v))
            for i, raw, uv, v in rows
        }

    async def install(
        self,
        content_id: str,
        counters: Mapping[str, int],
        unique_members: Sequence[str],
        asof_ms: int,
        *,
        replace: bool,
    ) -> bool:
        args: list[Any] = ["1" if replace else "0", asof_ms, len(counters)]
        for name, value in counters.items():
            args += [name, value]
        args.append("")  # no registers: the members are the whole sketch
        args += list(unique_members)
        keys = [self._keys.counters(content_id), self._keys.uniques(content_id)]
        installed, _ = await self._install(keys=keys, args=args)
        return bool(installed)

    async def install_zeroed(self, content_ids: Sequence[str]) -> None:
        if not content_ids:
            return
        # A PipelinedScript, not the Script on a pipeline, which a cluster pipeline refuses.
        calls: list[Call] = [
            ([self._keys.counters(cid), self._keys.uniques(cid)], ["0", 0, 0, ""])
            for cid in content_ids
        ]
        await self._install_many.run_many(self._r, calls)
