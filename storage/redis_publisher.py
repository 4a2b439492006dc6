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
            # Not pipe.publish, which redis-py's cluster pipeline refuses; on a cluster
            # each PUBLISH goes to its channel's slot node and reaches every node.
            pipe.execute_command("PUBLISH", channel, message)
        await pipe.execute()
