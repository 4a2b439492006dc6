"""The event log: Redis Streams, one per partition, read through consumer groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from domain.events import RAW_VIEW, EngagementEvent
from domain.log import Delivery, events_of, raw_views_of

# Delivery and its readers live in domain.log (the consumer port's types); they are
# re-exported here for the tests and tools that read the stream directly.
__all__ = [
    "Delivery",
    "RedisEventConsumer",
    "RedisEventLog",
    "decode",
    "encode",
    "events_of",
    "raw_views_of",
]
from storage.keys import Keys


def encode(events: Sequence[EngagementEvent]) -> dict[str, bytes]:
    fields: dict[str, bytes] = {}
    rest = [e.to_dict() for e in events if e.kind != RAW_VIEW]
    raw = [e.to_dict() for e in events if e.kind == RAW_VIEW]
    if rest or not raw:
        fields["b"] = orjson.dumps(rest)
    if raw:
        fields["r"] = orjson.dumps(raw)
        fields["n"] = str(len(raw)).encode()
    return fields


def decode(partition: int, message_id: str, fields: Mapping[str, Any]) -> Delivery:
    events = tuple(EngagementEvent.from_dict(raw) for raw in orjson.loads(fields.get("b", "[]")))
    raw = fields.get("r")
    if raw is None:
        return Delivery(partition, message_id, events)
    return Delivery(partition, message_id, events, raw, int(fields["n"]))


class RedisEventLog:
    def __init__(self, client: aioredis.Redis, keys: Keys, maxlen: int = 1_000_000) -> None:
        self._r = client
        self._keys = keys
        self._maxlen = maxlen

    async def append(self, events: Sequence[EngagementEvent]) -> None:
        if not events:
            return
        # One entry per partition per call: a batch of 100 view events is one XADD,
        # not 100. Events keep their own ids, so dedupe stays per event.
        by_partition: dict[int, list[EngagementEvent]] = {}
        for event in events:
            by_partition.setdefault(self._keys.partition(event.content_id), []).append(event)
        pipe = self._r.pipeline(transaction=False)
        for partition, batch in by_partition.items():
            # Approximate trimming keeps the log bounded; MongoDB is the archive.
            pipe.xadd(
                self._keys.stream(partition),
                encode(batch),  # type: ignore[arg-type]
                maxlen=self._maxlen,
                approximate=True,
            )
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
                    out.append(decode(partition, message_id, fields))
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
                    out.append(decode(partition, message_id, fields))
        return out
