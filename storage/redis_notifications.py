"""The notifier's working state in Redis (docs/NOTIFICATIONS.md): per content, the
event ids it applied, its open digest window and first-like candidates; and the
due set of checks its tick makes.

Per content (one hash tag, storage/keys.py ``notify_content``):

- ``ap``: event ids applied (score: when), trimmed to the dedupe horizon, so a
  redelivered event joins no window twice;
- ``st``: hash, ``cur`` = the open digest window's start (ms);
- ``open``: the open window's distinct reactors (score: their latest reaction);
- ``fl``: first-like candidates (score: when they liked), until the first like is
  notified;
- ``dg:<start>``: a closed window's reactors, until its digest is stored.

``RECORD`` applies a content's events of a batch atomically and effectively once;
``CLOSE`` closes a window atomically (new reactions open the next one) and can be
repeated after a crash: it returns the same reactors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from domain.notifications import DIGEST_NAMED, DigestWindow
from storage.keys import Keys
from storage.redis_scripts import Call, PipelinedScript

# KEYS: applied, state, open, first-like candidates. ARGV: now, horizon ms, key ttl
# ms, n, then per event: id, ms, flags ('r' joins the digest, 'l' a first-like
# candidate, 'u' an unlike), actor. Returns {open window start or '', joined}.
RECORD = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local ttl = tonumber(ARGV[3])
local cur = redis.call('HGET', KEYS[2], 'cur')
local joined = 0
local pos = 5
for _ = 1, tonumber(ARGV[4]) do
  local id, ms, flags, actor = ARGV[pos], tonumber(ARGV[pos + 1]), ARGV[pos + 2], ARGV[pos + 3]
  pos = pos + 4
  if redis.call('ZADD', KEYS[1], 'NX', now, id) == 1 then
    if string.find(flags, 'r', 1, true) then
      if not cur then
        cur = string.format('%d', ms)
        redis.call('HSET', KEYS[2], 'cur', cur)
      end
      -- Each reactor once per window, at their latest reaction.
      local old = redis.call('ZSCORE', KEYS[3], actor)
      if not old or tonumber(old) < ms then redis.call('ZADD', KEYS[3], ms, actor) end
      joined = joined + 1
    end
    if string.find(flags, 'u', 1, true) then redis.call('ZREM', KEYS[4], actor) end
    if string.find(flags, 'l', 1, true) then
      if not redis.call('ZSCORE', KEYS[4], actor) then redis.call('ZADD', KEYS[4], ms, actor) end
    end
  end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
for i = 2, 4 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return {cur or '', joined}
"""

# KEYS: state, open, closed. ARGV: window start, actors to name, key ttl ms.
# Returns {distinct reactors, the most recent of them}.
CLOSE = """
if redis.call('HGET', KEYS[1], 'cur') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'cur')
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('RENAME', KEYS[2], KEYS[3])
    redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[3]))
  end
end
return {redis.call('ZCARD', KEYS[3]), redis.call('ZREVRANGE', KEYS[3], 0, tonumber(ARGV[2]) - 1)}
"""

# Windows and candidates outlive any digest window and settle delay by far.
KEY_TTL_MS = 2 * 86_400_000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


RecordItem = tuple[str, int, str, str]  # event id, ms, flags, actor


class RedisNotifyState:
    def __init__(self, client: aioredis.Redis, keys: Keys, dedupe_horizon_ms: int) -> None:
        self._r = client
        self._keys = keys
        self._horizon = dedupe_horizon_ms
        self._record = PipelinedScript(RECORD)
        self._close = PipelinedScript(CLOSE)

    @property
    def keys(self) -> Keys:
        return self._keys

    async def load_scripts(self) -> None:
        await self._record.load(self._r)
        await self._close.load(self._r)

    async def record(
        self, items: Mapping[str, Sequence[RecordItem]], now_ms: int
    ) -> dict[str, int | None]:
        """Apply each content's events (oldest first), one round trip; per content the
        start of its open digest window (None: no window open)."""
        order = [cid for cid, rows in items.items() if rows]
        if not order:
            return {}
        calls: list[Call] = []
        for cid in order:
            args: list[Any] = [now_ms, self._horizon, KEY_TTL_MS, len(items[cid])]
            for event_id, ms, flags, actor in items[cid]:
                args += [event_id, ms, flags, actor]
            calls.append((list(self._keys.notify_content(cid)), args))
        replies = await self._record.run_many(self._r, calls)
        out: dict[str, int | None] = {}
        for cid, (cur, _joined) in zip(order, replies, strict=True):
            text = _text(cur)
            out[cid] = int(text) if text else None
        return out

    async def close_window(self, content_id: str, start_ms: int) -> DigestWindow:
        _, state, open_, _ = self._keys.notify_content(content_id)
        closed = self._keys.notify_closed(content_id, start_ms)
        [reply] = await self._close.run_many(
            self._r, [([state, open_, closed], [start_ms, DIGEST_NAMED, KEY_TTL_MS])]
        )
        count, actors = reply[0], reply[1]
        return DigestWindow(content_id, start_ms, int(count), [_text(a) for a in actors])

    async def discard_closed(self, content_id: str, start_ms: int) -> None:
        await self._r.delete(self._keys.notify_closed(content_id, start_ms))

    async def open_window(self, content_id: str) -> int | None:
        _, state, _, _ = self._keys.notify_content(content_id)
        cur = await self._r.hget(state, "cur")
        return int(_text(cur)) if cur else None

    async def first_like_candidates(self, content_id: str, limit: int) -> list[str]:
        """Users whose like may be the first, earliest first."""
        fl = self._keys.notify_content(content_id)[3]
        return [_text(m) for m in await self._r.zrange(fl, 0, limit - 1)]

    async def clear_candidates(self, content_id: str) -> None:
        await self._r.delete(self._keys.notify_content(content_id)[3])

    # --- the due set -------------------------------------------------------------------

    async def schedule(self, due: Mapping[str, int]) -> None:
        """Each check at its time, unless it is scheduled already (the earlier time
        stays: a busy content is still checked)."""
        if due:
            await self._r.zadd(self._keys.notify_due(), dict(due), nx=True)

    async def reschedule(self, member: str, at_ms: int) -> None:
        await self._r.zadd(self._keys.notify_due(), {member: at_ms}, xx=True)

    async def due(self, now_ms: int, limit: int) -> list[tuple[str, int]]:
        rows = await self._r.zrangebyscore(
            self._keys.notify_due(), "-inf", now_ms, start=0, num=limit, withscores=True
        )
        return [(_text(row[0]), int(row[1])) for row in rows]

    async def unschedule(self, members: Sequence[str]) -> None:
        if members:
            await self._r.zrem(self._keys.notify_due(), *members)
