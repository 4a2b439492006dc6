"""Analytics in Redis: distinct-people sketches per bucket, and the applied-event set.

Sketches: per (scope, granularity, bucket) and per kind (viewers "v", reacting
users "r"), a HyperLogLog of every member plus an exact SET while it has at most
EXACT_LIMIT members; past that the set goes and an overflow marker stays. Adding
is idempotent (PFADD, SADD, and the overflow depends only on which members were
ever added), so redeliveries, replays and a rebuild leave the same keys behind.
All keys of one scope share a hash tag: a range's buckets are counted in one
script call on Redis Cluster too.

The applied set (per partition, like the counters' one in redis_counters.py)
holds the ids of events the analytics worker applied, for the dedupe horizon:
a redelivered or replayed event found there is dropped before it is folded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from domain.analytics import RETENTION_MS, CoverPiece, Fold, Granularity
from domain.events import EngagementEvent
from storage.keys import Keys
from storage.redis_scripts import Call, PipelinedScript

# The exact set of a bucket is kept while it has at most this many members.
EXACT_LIMIT = 100
# A range whose buckets all kept their sets is counted exactly up to this many
# people; past it the estimate is as good (its error shrinks as counts grow).
UNION_CAP = 20_000
# Members per PFADD/SADD inside the scripts (Lua's unpack has a stack limit).
_CHUNK = 1000
_KEYS_PER_BUCKET = 6  # viewers (set, over, hll), reacting users (set, over, hll)

# ARGV: limit, then per bucket (6 keys each): expire-at ms (0: never), then for
# viewers and for reacting users: n, n members.
ADD = """
local limit = tonumber(ARGV[1])
local pos = 2
local function add(cmd, key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call(cmd, key, unpack(ARGV, i, j))
    i = j + 1
  end
end
for b = 0, #KEYS / 6 - 1 do
  local at = tonumber(ARGV[pos]); pos = pos + 1
  for k = 0, 1 do
    local set, over, hll = KEYS[b * 6 + k * 3 + 1], KEYS[b * 6 + k * 3 + 2], KEYS[b * 6 + k * 3 + 3]
    local n = tonumber(ARGV[pos]); pos = pos + 1
    if n > 0 then
      add('PFADD', hll, pos, pos + n - 1)
      if redis.call('EXISTS', over) == 0 then
        add('SADD', set, pos, pos + n - 1)
        if redis.call('SCARD', set) > limit then
          redis.call('DEL', set)
          redis.call('SET', over, '1')
        end
      end
      if at > 0 then
        redis.call('PEXPIREAT', hll, at)
        redis.call('PEXPIREAT', set, at)
        redis.call('PEXPIREAT', over, at)
      end
      pos = pos + n
    end
  end
end
return 1
"""

# Distinct viewers and reacting users over a range's buckets (6 keys each). While
# no bucket overflowed, the union of the exact sets is the exact answer, whatever
# its size: it is used up to UNION_CAP members (a bound on the script's work; the
# sets hold at most EXACT_LIMIT each). Otherwise the HyperLogLogs' merged estimate
# (standard error 0.81%).
COUNT = """
local cap = tonumber(ARGV[1])
local n = #KEYS / 6
local function count(off)
  if n == 0 then return 0 end
  local markers, hlls = {}, {}
  for i = 0, n - 1 do
    markers[i + 1] = KEYS[i * 6 + off + 2]
    hlls[i + 1] = KEYS[i * 6 + off + 3]
  end
  if redis.call('EXISTS', unpack(markers)) == 0 then
    local seen, card = {}, 0
    for i = 0, n - 1 do
      for _, m in ipairs(redis.call('SMEMBERS', KEYS[i * 6 + off + 1])) do
        if not seen[m] then
          seen[m] = true
          card = card + 1
        end
      end
      if card > cap then break end
    end
    if card <= cap then return card end
  end
  return redis.call('PFCOUNT', unpack(hlls))
end
return {count(0), count(3)}
"""


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class RedisAnalytics:
    def __init__(self, client: aioredis.Redis, keys: Keys, dedupe_horizon_ms: int) -> None:
        self._r = client
        self._keys = keys
        self._horizon = dedupe_horizon_ms
        self._add = PipelinedScript(ADD)
        self._count = PipelinedScript(COUNT)

    async def load_scripts(self) -> None:
        await self._add.load(self._r)
        await self._count.load(self._r)

    # --- applied events -------------------------------------------------------

    def _by_partition(self, events: Sequence[EngagementEvent]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for e in events:
            out.setdefault(self._keys.partition(e.content_id), []).append(e.event_id)
        return out

    async def unapplied(self, events: Sequence[EngagementEvent]) -> list[EngagementEvent]:
        """The events not in the applied set (one round trip)."""
        if not events:
            return []
        groups = self._by_partition(events)
        pipe = self._r.pipeline(transaction=False)
        for p, ids in groups.items():
            pipe.zmscore(self._keys.analytics_applied(p), ids)
        applied: set[str] = set()
        for ids, scores in zip(groups.values(), await pipe.execute(), strict=True):
            applied.update(i for i, s in zip(ids, scores, strict=True) if s is not None)
        return [e for e in events if e.event_id not in applied]

    async def remember(self, events: Sequence[EngagementEvent]) -> None:
        """Add to the applied set (and forget what is older than the horizon)."""
        if not events:
            return
        now = int(time.time() * 1000)
        pipe = self._r.pipeline(transaction=False)
        for p, ids in self._by_partition(events).items():
            key = self._keys.analytics_applied(p)
            for i in range(0, len(ids), 10_000):
                pipe.zadd(key, dict.fromkeys(ids[i : i + 10_000], now))
            pipe.zremrangebyscore(key, "-inf", now - self._horizon)
        await pipe.execute()

    # --- sketches -------------------------------------------------------------

    def _bucket_keys(self, scope: str, granularity: Granularity, start_ms: int) -> list[str]:
        g = granularity.value
        return [
            *self._keys.analytics_sketch(scope, g, start_ms, "v"),
            *self._keys.analytics_sketch(scope, g, start_ms, "r"),
        ]

    async def add(self, fold: Fold) -> None:
        """Every bucket's viewers and reacting users: one script call per scope,
        all in one pipeline."""
        calls: dict[str, tuple[list[str], list[Any]]] = {}
        for key, delta in fold.buckets.items():
            if not delta.viewers and not delta.reactors:
                continue
            keys, args = calls.setdefault(key.scope, ([], [EXACT_LIMIT]))
            keys += self._bucket_keys(key.scope, key.granularity, key.start_ms)
            retention = RETENTION_MS[key.granularity]
            args.append(0 if retention is None else key.start_ms + retention)
            args += [len(delta.viewers), *delta.viewers, len(delta.reactors), *delta.reactors]
        if calls:
            await self._add.run_many(self._r, list(calls.values()))

    async def distinct(self, scope: str, pieces: Sequence[CoverPiece]) -> tuple[int, int]:
        keys = [
            name
            for piece in pieces
            for start in piece.starts
            for name in self._bucket_keys(scope, piece.granularity, start)
        ]
        call: Call = (keys, [UNION_CAP])
        [(viewers, reactors)] = await self._count.run_many(self._r, [call])
        return int(viewers), int(reactors)

    async def delete(self, scopes: Sequence[str] | None, since_ms: int | None = None) -> int:
        """Remove the sketches of some scopes (None: all), of buckets starting at
        ``since_ms`` or later (None: all); returns how many keys went. A rebuild's."""
        keys = self._keys
        prefixes = (
            [keys.analytics_scope_prefix(s) for s in scopes]
            if scopes is not None
            else [keys.analytics_prefix()]
        )
        removed = 0
        for prefix in prefixes:
            batch: list[str] = []
            async for raw in self._r.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
                name = raw.decode() if isinstance(raw, bytes) else raw
                if not self._wanted(name, prefix, exact=scopes is not None, since_ms=since_ms):
                    continue
                batch.append(name)
                if len(batch) >= 1000:
                    removed += await self._r.unlink(*batch)
                    batch = []
            if batch:
                removed += await self._r.unlink(*batch)
        return removed

    @staticmethod
    def _wanted(name: str, prefix: str, *, exact: bool, since_ms: int | None) -> bool:
        # <scope prefix><kind>:<granularity>:<start>:<part>. With a scope's prefix,
        # anything else is another scope whose id merely starts the same way.
        rest = name[len(prefix) :].split(":")
        if exact and len(rest) != 4:
            return False
        start = rest[-2] if len(rest) >= 2 else ""
        if not start.isdigit():
            return False
        return since_ms is None or int(start) >= since_ms
