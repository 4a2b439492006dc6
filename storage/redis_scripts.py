"""Lua scripts sent inside pipelines, as plain EVALSHA.

redis-py's Script objects in a pipeline check SCRIPT EXISTS before every
execute: a second round trip each time. We load each script once and reload
only when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

Call = tuple[Sequence[str], Sequence[Any]]  # (keys, args) of one script call


class PipelinedScript:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._loaded = False

    async def load(self, client: aioredis.Redis) -> None:
        """At start-up, so no request pays for it."""
        await client.script_load(self.source)
        self._loaded = True

    async def run_many(self, client: aioredis.Redis, calls: Sequence[Call]) -> list[Any]:
        """Every call in one pipeline: one round trip."""
        if not self._loaded:
            await client.script_load(self.source)
            self._loaded = True
        try:
            return await self._send(client, calls)
        except NoScriptError:
            await client.script_load(self.source)
            return await self._send(client, calls)

    async def _send(self, client: aioredis.Redis, calls: Sequence[Call]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            # Not pipe.evalsha: redis-py's cluster pipeline refuses that method (keys
            # could span slots), while execute_command routes EVALSHA by its keys.
            pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        return list(await pipe.execute())


def grouped(items: Sequence[Any], partition: Callable[[Any], int]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for item in items:
        out.setdefault(partition(item), []).append(item)
    return out
