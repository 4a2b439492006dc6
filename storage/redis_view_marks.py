"""View dedupe marks: (content, viewer/device key) -> who counted and when.

The mark's timestamp decides whether a window has passed (the application's
clock, like every other decision); the key's TTL only collects old marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from domain.ports import DedupeMark
from storage.keys import Keys
from storage.redis_scripts import Call, PipelinedScript, grouped

# For each key: free, held by the same session (a retry), or held by a mark whose
# window has passed -> claimed; held by another session within its window -> lost.
CLAIM = """
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local value, sid, window = ARGV[3 * i - 1], ARGV[3 * i], tonumber(ARGV[3 * i + 1])
  local held = redis.call('GET', KEYS[i])
  local won, mine = 1, false
  if held then
    local bar = string.find(held, '|', 1, true)
    local at, holder = tonumber(string.sub(held, 1, bar - 1)), string.sub(held, bar + 1)
    mine = holder == sid
    if not mine and at + window > now then won = 0 end
  end
  if won == 1 and not mine then redis.call('SET', KEYS[i], value, 'PX', window) end
  out[i] = won
end
return out
"""


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class RedisViewMarks:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r = client
        self._keys = keys
        self._claim = PipelinedScript(CLAIM)

    async def load_scripts(self) -> None:
        await self._claim.load(self._r)

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], DedupeMark]:
        if not keys:
            return {}
        # One MGET per partition (its keys share a Redis Cluster slot), all in one
        # pipeline: a batch's 100 lookups as 100 GETs cost the client far more.
        groups = grouped(list(keys), lambda k: self._keys.partition(k[0]))
        pipe = self._r.pipeline(transaction=False)
        for group in groups.values():
            # Not pipe.mget, which redis-py's cluster pipeline refuses (storage/redis_scripts.py).
            names = [self._keys.view_dedupe(content_id, key) for content_id, key in group]
            pipe.execute_command("MGET", *names)
        out: dict[tuple[str, str], DedupeMark] = {}
        for group, values in zip(groups.values(), await pipe.execute(), strict=True):
            for wanted, raw in zip(group, values, strict=True):
                if raw:
                    ms, _, session_id = raw.partition("|")
                    out[wanted] = DedupeMark(
                        datetime.fromtimestamp(int(ms) / 1000, UTC), session_id
                    )
        return out

    async def claim_many(
        self, claims: Sequence[tuple[str, str, str, datetime, timedelta]]
    ) -> set[str]:
        if not claims:
            return set()
        # One script call per partition (one Redis Cluster slot), all in one pipeline.
        groups = grouped(list(claims), lambda c: self._keys.partition(c[0]))
        calls: list[Call] = []
        for group in groups.values():
            keys = [self._keys.view_dedupe(cid, key) for cid, key, _, _, _ in group]
            args: list[Any] = [_ms(group[0][3])]
            for _, _, session_id, at, window in group:
                args += [f"{_ms(at)}|{session_id}", session_id, int(window.total_seconds() * 1000)]
            calls.append((keys, args))
        replies = await self._claim.run_many(self._r, calls)
        lost: set[str] = set()
        for group, won in zip(groups.values(), replies, strict=True):
            lost.update(c[2] for c, ok in zip(group, won, strict=True) if not int(ok))
        return lost
