"""Publishing live updates: one pipelined PUBLISH per batch of touched contents."""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis


class RedisPublisher:
    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client

    async def publish(self, messages: Mapping[str, str]) -> None:
        if not messages:
            return
        pipe = self._r.pipeline(transaction=False)
        for channel, message in messages.items():
            pipe.publish(channel, message)
        await pipe.execute()
