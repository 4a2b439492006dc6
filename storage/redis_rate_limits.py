"""Abuse limits in Redis: one GCRA script call per request, and the daily address salt.

Why not the ``limits`` library: its strategies take one limit and one identifier per
call (``hit(item, *identifiers)``), so a like's three scopes are three round trips, a
retry-after needs one more (``get_window_stats``), a refused scope cannot leave the
others untouched, and its storages open their own Redis client from a URL (no
fakeredis in the embedded mode, no shared pool). This script checks every scope of
every request at once, in one round trip (docs/PERFORMANCE.md, Abuse limits).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from domain.rate_limits import Rate, Subject
from storage.keys import Keys
from storage.redis_scripts import PipelinedScript

# GCRA (domain/rate_limits.gcra) over many keys and requests, in order.
# KEYS: the distinct limit keys. ARGV[1]: now (ms). ARGV[2i], ARGV[2i+1]: key i's
# emission interval (ms) and burst. Then the number of requests, and for each the
# number of its keys followed by their indexes into KEYS.
# A request passes when every key allows it, and only then moves their TATs on.
# Returns, request by request, the wait (ms) of each of its keys: 0 where allowed.
GCRA = """
local now = tonumber(ARGV[1])
local tat, period, burst, dirty = {}, {}, {}, {}
for i = 1, #KEYS do
  period[i] = tonumber(ARGV[2 * i])
  burst[i] = tonumber(ARGV[2 * i + 1])
  local stored = redis.call('GET', KEYS[i])
  tat[i] = stored and tonumber(stored) or now
end
local pos = 2 * #KEYS + 2
local requests = tonumber(ARGV[pos])
pos = pos + 1
local out = {}
for _ = 1, requests do
  local n = tonumber(ARGV[pos])
  local ok = true
  for j = 1, n do
    local k = tonumber(ARGV[pos + j])
    local start = math.max(tat[k], now)
    local allow_at = start + period[k] - burst[k] * period[k]
    local wait = 0
    if allow_at > now then
      wait = math.ceil(allow_at - now)
      ok = false
    end
    out[#out + 1] = wait
  end
  if ok then
    for j = 1, n do
      local k = tonumber(ARGV[pos + j])
      tat[k] = math.max(tat[k], now) + period[k]
      dirty[k] = true
    end
  end
  pos = pos + n + 1
end
for k in pairs(dirty) do
  local ttl = math.max(1, math.ceil(tat[k] - now))
  redis.call('SET', KEYS[k], string.format('%.3f', tat[k]), 'PX', ttl)
end
return out
"""


class RedisRateLimits:
    """domain.rate_limits.RateLimitStore: every request of a call in one EVALSHA."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r = client
        self._keys = keys
        self._script = PipelinedScript(GCRA)

    async def load_scripts(self) -> None:
        await self._script.load(self._r)

    async def acquire(
        self, now_ms: int, requests: Sequence[Sequence[tuple[Subject, Rate]]]
    ) -> list[list[int]]:
        index: dict[str, int] = {}
        names: list[str] = []
        params: list[Any] = []
        shape: list[Any] = [len(requests)]
        for request in requests:
            shape.append(len(request))
            for (action, scope, who), rate in request:
                name = self._keys.rate_limit(action, scope, who)
                at = index.get(name)
                if at is None:
                    at = index[name] = len(names) + 1
                    names.append(name)
                    params += [repr(rate.interval_ms), rate.burst]
                shape.append(at)
        if not names:
            return [[] for _ in requests]
        (flat,) = await self._script.run_many(self._r, [(names, [now_ms, *params, *shape])])
        out: list[list[int]] = []
        pos = 0
        for request in requests:
            out.append([int(w) for w in flat[pos : pos + len(request)]])
            pos += len(request)
        return out


# A salt outlives its day by a day: a process whose clock is a little behind still
# finds yesterday's, and nothing keeps it longer.
SALT_TTL_S = 2 * 86_400


class RedisAddressSalts:
    """domain.identity.SaltStore: ``lv:salt:<yyyymmdd>``, made once with SET NX from
    ``secrets.token_bytes`` and read back, in one pipeline (one round trip)."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r = client
        self._keys = keys

    async def salt_for(self, day: str) -> bytes:
        name = self._keys.address_salt(day)
        pipe = self._r.pipeline(transaction=False)
        pipe.set(name, secrets.token_bytes(16).hex(), nx=True, ex=SALT_TTL_S)
        pipe.get(name)
        _, value = await pipe.execute()
        if isinstance(value, bytes):
            value = value.decode()
        return bytes.fromhex(value)
