"""What the reconciler checks next: contents the aggregator touched, then a sweep."""

from __future__ import annotations

import math

import redis.asyncio as aioredis

from storage.keys import Keys
from storage.redis_scripts import PipelinedScript

# Takes (reads and removes) the contents of one partition touched no later than
# ARGV[1], oldest first, at most ARGV[2]. A content touched again after this is
# added back by the aggregator with its new time, so nothing is lost by taking.
TAKE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
"""


class RedisReconcileQueue:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r = client
        self._keys = keys
        self._take = PipelinedScript(TAKE)

    async def take_touched(self, settled_before_ms: int, limit: int) -> list[str]:
        parts = self._keys.partitions
        each = max(1, math.ceil(limit / parts))
        calls = [([self._keys.touched(p)], [settled_before_ms, each]) for p in range(parts)]
        replies = await self._take.run_many(self._r, calls)
        return [cid for reply in replies for cid in reply]

    async def sweep_position(self) -> str | None:
        value = await self._r.get(self._keys.reconcile_sweep())
        return None if value is None else str(value)

    async def save_sweep_position(self, after: str | None) -> None:
        if after is None:
            await self._r.delete(self._keys.reconcile_sweep())
        else:
            await self._r.set(self._keys.reconcile_sweep(), after)
