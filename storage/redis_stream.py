"""The event log: Redis Streams, one per partition, read through consumer groups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from domain.events import EngagementEvent
from storage.keys import Keys


@dataclass(frozen=True, slots=True)
class Delivery:
    partition: int
    message_id: str
    event: EngagementEvent


def encode(event: EngagementEvent) -> dict[str, bytes]:
    return {"e": orjson.dumps(event.to_dict())}


def decode(fields: dict[str, str]) -> EngagementEvent:
    return EngagementEvent.from_dict(orjson.loads(fields["e"]))


class RedisEventLog:
    def __init__(self, client: aioredis.Redis, keys: Keys, maxlen: int = 1_000_000) -> None:
        self._r = client
        self._keys = keys
        self._maxlen = maxlen

    async def append(self, events: Sequence[EngagementEvent]) -> None:
        if not events:
            return
        pipe = self._r.pipeline(transaction=False)
        for event in events:
            stream = self._keys.stream(self._keys.partition(event.content_id))
            # Approximate trimming keeps the log bounded; MongoDB's `events`
            # collection is the long-term archive.
            pipe.xadd(stream, encode(event), maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]
        await pipe.execute()


class RedisEventConsumer:
    """One consumer in one group, over a set of partitions."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        group: str,
        consumer: str,
        partitions: Sequence[int] | None = None,
    ) -> None:
        self._r = client
        self._keys = keys
        self._group = group
        self._consumer = consumer
        self._partitions = list(partitions if partitions is not None else range(keys.partitions))
        self._by_stream = {keys.stream(p): p for p in self._partitions}

    async def ensure_groups(self) -> None:
        for stream in self._by_stream:
            try:
                await self._r.xgroup_create(stream, self._group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(
        self, count: int, block_ms: int | None, *, pending: bool = False
    ) -> list[Delivery]:
        """New deliveries, or with ``pending`` this consumer's unacknowledged ones."""
        start = "0" if pending else ">"
        streams: Any = dict.fromkeys(self._by_stream, start)
        try:
            reply = await self._r.xreadgroup(
                self._group,
                self._consumer,
                streams,
                count=count,
                block=block_ms,
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream was flushed or trimmed away with its group: start again.
            await self.ensure_groups()
            return []
        return self._deliveries(reply)

    async def claim_stale(self, min_idle_ms: int, count: int) -> list[Delivery]:
        """Take over deliveries a dead consumer left unacknowledged."""
        out: list[Delivery] = []
        for stream, partition in self._by_stream.items():
            try:
                reply = await self._r.xautoclaim(
                    stream, self._group, self._consumer, min_idle_ms, "0-0", count=count
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                continue
            for message_id, fields in reply[1]:
                if fields:
                    out.append(Delivery(partition, message_id, decode(fields)))
        return out

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        by_partition: dict[int, list[str]] = {}
        for d in deliveries:
            by_partition.setdefault(d.partition, []).append(d.message_id)
        pipe = self._r.pipeline(transaction=False)
        for partition, ids in by_partition.items():
            pipe.xack(self._keys.stream(partition), self._group, *ids)
        await pipe.execute()

    def _deliveries(self, reply: object) -> list[Delivery]:
        out: list[Delivery] = []
        items: Any = reply.items() if isinstance(reply, dict) else (reply or [])
        for stream, messages in items:
            partition = self._by_stream[stream]
            for message_id, fields in messages:
                if fields:  # a deleted entry comes back empty
                    out.append(Delivery(partition, message_id, decode(fields)))
        return out
