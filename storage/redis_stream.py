"""The event log: Redis Streams, one per partition, read through consumer groups."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from domain.events import RAW_VIEW, EngagementEvent
from domain.log import Delivery, events_of, raw_views_of

# Delivery and its readers live in domain.log (the consumer port's types); they are
# re-exported here for the tests and tools that read the stream directly.
__all__ = [
    "CONSUMER_GROUPS",
    "Delivery",
    "GroupLag",
    "RedisEventConsumer",
    "RedisEventLag",
    "RedisEventLog",
    "decode",
    "encode",
    "events_of",
    "raw_views_of",
]
from storage.keys import Keys
from storage.redis_cluster import is_cluster


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


# Every consumer group that reads the event log (one per worker kind).
CONSUMER_GROUPS = (
    Keys.AGGREGATOR_GROUP,
    Keys.ARCHIVE_GROUP,
    Keys.ANALYTICS_GROUP,
    Keys.TRENDING_GROUP,
    Keys.INTEGRITY_GROUP,
    Keys.NOTIFIER_GROUP,
)


@dataclass(frozen=True, slots=True)
class GroupLag:
    """How far one consumer group is behind on one partition's stream."""

    group: str
    partition: int
    # Delivered to a consumer, not acknowledged.
    pending: int
    # After the group's last-delivered id; None when Redis cannot tell (XINFO GROUPS
    # "lag" is nil after entries were trimmed or deleted past the group).
    undelivered: int | None
    # Ages from the stream ids (ms since the entry was appended); 0 when none.
    undelivered_age_ms: int
    pending_age_ms: int


def id_ms(stream_id: str) -> int:
    return int(stream_id.split("-", 1)[0])


class RedisEventLag:
    """Reads every consumer group's lag on every partition in two pipelined round
    trips: XLEN and XINFO GROUPS per stream; then, only where something waits, the
    oldest pending id (XPENDING summary) and the first entry after the group's
    last-delivered id (XRANGE, COUNT 1). At most 2 + 2 x groups commands per
    partition, whatever the backlog."""

    def __init__(self, client: aioredis.Redis, keys: Keys, groups: Sequence[str]) -> None:
        self._r = client
        self._keys = keys
        self._groups = list(groups)

    async def read(self, now_ms: int) -> list[GroupLag]:
        streams = self._keys.streams()
        pipe = self._r.pipeline(transaction=False)
        for stream in streams:
            pipe.xlen(stream)
            pipe.xinfo_groups(stream)
        replies = await pipe.execute(raise_on_error=False)
        # (group, partition, pending, undelivered, last-delivered id)
        state: list[tuple[str, int, int, int | None, str]] = []
        for partition in range(len(streams)):
            xlen, info = replies[2 * partition], replies[2 * partition + 1]
            length = xlen if isinstance(xlen, int) else 0
            known: dict[str, Any] = {}
            if isinstance(info, list):  # an error: the stream does not exist yet
                known = {_text(g["name"]): g for g in info}
            for group in self._groups:
                g = known.get(group)
                if g is None:
                    # Not created yet (its worker never ran): everything waits for it.
                    state.append((group, partition, 0, length, "0-0"))
                    continue
                lag = g.get("lag")
                state.append(
                    (
                        group,
                        partition,
                        int(g["pending"]),
                        None if lag is None else int(lag),
                        _text(g["last-delivered-id"]),
                    )
                )
        pipe = self._r.pipeline(transaction=False)
        asked = 0
        for group, partition, pending, undelivered, last in state:
            stream = self._keys.stream(partition)
            if pending:
                pipe.xpending(stream, group)
                asked += 1
            if undelivered != 0:
                pipe.xrange(stream, min="(" + last, max="+", count=1)
                asked += 1
        more = iter(await pipe.execute(raise_on_error=False) if asked else [])
        out: list[GroupLag] = []
        for group, partition, pending, undelivered, _last in state:
            pending_age = undelivered_age = 0
            if pending:
                summary = next(more)
                oldest = summary.get("min") if isinstance(summary, dict) else None
                if oldest:
                    pending_age = max(0, now_ms - id_ms(_text(oldest)))
            if undelivered != 0:
                first = next(more)
                if isinstance(first, list) and first:
                    undelivered_age = max(0, now_ms - id_ms(_text(first[0][0])))
                elif undelivered is None:
                    undelivered = 0  # nothing after the last-delivered id after all
            out.append(
                GroupLag(group, partition, pending, undelivered, undelivered_age, pending_age)
            )
        return out


def _stream_gone(exc: ResponseError) -> bool:
    # NOGROUP: no group (a flush took it); UNBLOCKED: a blocked read's stream was
    # deleted under it (FLUSHALL while the worker waited).
    return "NOGROUP" in str(exc) or "UNBLOCKED" in str(exc)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
        # On a cluster each partition's stream is its own slot: one XREADGROUP per stream.
        self._per_stream = is_cluster(client) and len(self._by_stream) > 1
        self._inflight: dict[str, asyncio.Task[Any]] = {}

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
        if self._per_stream:
            return await self._read_per_stream(start, count, block_ms)
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
            if not _stream_gone(exc):
                raise
            # The stream was flushed or trimmed away with its group: start again.
            await self.ensure_groups()
            return []
        return self._deliveries(reply)

    async def _read_per_stream(
        self, start: str, count: int, block_ms: int | None
    ) -> list[Delivery]:
        """A cluster read. Without blocking: one XREADGROUP per stream in one cluster
        pipeline (one round trip per node, concurrently). Blocking: one blocked read per
        stream, kept in flight across calls, so a stream with news returns at once and
        the others' reads, never cancelled, hand over what they got in a later call."""
        if start != ">" or not block_ms:
            # A stream with a read in flight is skipped: the next event goes to it.
            names = [s for s in self._by_stream if start != ">" or s not in self._inflight]
            pipe = self._r.pipeline(transaction=False)
            for stream in names:
                pipe.xreadgroup(self._group, self._consumer, {stream: start}, count=count)
            replies = list(await pipe.execute(raise_on_error=False)) if names else []
            return await self._replies(self._collect_inflight() + replies)
        for stream in self._by_stream:
            if stream not in self._inflight:
                self._inflight[stream] = asyncio.create_task(
                    self._blocked_read(stream, count, block_ms), name=f"xreadgroup-{stream}"
                )
        try:
            await asyncio.wait(self._inflight.values(), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The worker stops: what these reads deliver stays pending, for the
            # next start's own pending read or another consumer's claim.
            for task in self._inflight.values():
                task.cancel()
            self._inflight.clear()
            raise
        return await self._replies(self._collect_inflight())

    async def _blocked_read(self, stream: str, count: int, block_ms: int) -> Any:
        streams: Any = {stream: ">"}
        return await self._r.xreadgroup(
            self._group, self._consumer, streams, count=count, block=block_ms
        )

    def _collect_inflight(self) -> list[Any]:
        replies: list[Any] = []
        for stream in [s for s, t in self._inflight.items() if t.done()]:
            task = self._inflight.pop(stream)
            if not task.cancelled():
                replies.append(task.exception() or task.result())
        return replies

    async def _replies(self, replies: Sequence[Any]) -> list[Delivery]:
        out: list[Delivery] = []
        nogroup = False
        for reply in replies:
            if isinstance(reply, ResponseError) and _stream_gone(reply):
                nogroup = True
            elif isinstance(reply, BaseException):
                raise reply
            else:
                out += self._deliveries(reply)
        if nogroup:
            # The stream was flushed or trimmed away with its group: start again.
            await self.ensure_groups()
        return out

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
