"""The analytics worker: event log -> rollups (MongoDB) and sketches (Redis), effectively once.

Per read of the log: the contents' creators are looked up once, then per group
of events (see ``GROUP_TOKENS``):

1. drop events whose id is in the applied set (redelivered or replayed within
   the dedupe horizon);
2. fold the rest into per-bucket increments and write them: the sketches (adding
   is idempotent) and the rollups, each bucket's write guarded by the tokens it
   saw recently (storage/mongo_analytics.py);
3. add the ids to the applied set.

The deliveries are acknowledged after the last group. A crash after 2 and before
3 redelivers; the guard then makes the second write a no-op.

Guard tokens: an event's id, except for raw view events, whose token is their
log entry (partition and message id) and their content (``per_content``). Raw
view events are the bulk of the log and are only ever in one entry (no outbox
republishes them; a repeated client event is refused by its session), so the
entry names them exactly, and a bucket's guard holds one token for a recordViews
batch's events of its content instead of one each. Every other event may come
again in a new entry (the outbox relay republishes), so it is its own token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

import orjson

from domain.analytics import (
    ANALYTICS_KINDS,
    MINUTE_MS,
    Fold,
    content_scope,
    creator_scope,
    fold,
)
from domain.contents import Content
from domain.events import EngagementEvent
from domain.log import Delivery, EventConsumer, consume, drain
from domain.ports import ContentRepository
from storage.mongo_analytics import GUARD_SIZE
from workers.metrics import (
    ANALYTICS_BATCHES,
    ANALYTICS_EVENTS,
    ANALYTICS_REDONE,
    ANALYTICS_SKIPPED,
)

log = logging.getLogger(__name__)

# At most this many guard tokens per group reach any one bucket, so one group's
# tokens fill at most a quarter of a bucket's guard: a crash between writing a
# group and remembering it stays harmless while fewer than GUARD_SIZE -
# GROUP_TOKENS (750) other tokens reach that bucket before the redelivery.
# Counted per creator (a content's buckets get a subset of its creator's
# tokens), so a group may hold more tokens in all when they go to several
# creators' buckets: fewer, fuller bucket writes per event.
GROUP_TOKENS = GUARD_SIZE // 4
# And at most about this many events: a group's fold and writes run without a pause
# for the event loop (in the embedded mode, the API's), so a backlog of raw view
# entries is taken a few thousand events at a time, not a read's worth at once.
GROUP_EVENTS = 2_000
# A read is ordered by content when each content's events in it fall within at
# most this many minutes on average (``dense``).
DENSE_MINUTES = 10


class RollupWriter(Protocol):
    async def apply(self, fold: Fold) -> int:
        """Write the fold's counters, guarded; returns how many bucket writes were
        redone token by token."""


class SketchWriter(Protocol):
    async def add(self, fold: Fold) -> None: ...


class AppliedEvents(Protocol):
    async def unapplied(self, events: Sequence[EngagementEvent]) -> list[EngagementEvent]: ...

    async def remember(self, events: Sequence[EngagementEvent]) -> None: ...


def log_token(delivery: Delivery) -> str:
    return f"log:{delivery.partition}:{delivery.message_id}"


# A unit: events that travel together, with one guard token each (a single event
# with its own id, or one entry's raw view events with the entry's token).
Unit = list[tuple[EngagementEvent, str]]


def units(deliveries: Sequence[Delivery]) -> list[Unit]:
    """The deliveries' analytics events with their guard tokens, each event once (the
    first time it appears), in log order."""
    out: list[Unit] = []
    seen: set[str] = set()
    for d in deliveries:
        for event in d.events:
            if event.kind in ANALYTICS_KINDS and event.event_id not in seen:
                seen.add(event.event_id)
                out.append([(event, event.event_id)])
        if d.raw_views:
            token = log_token(d)
            raw: Unit = []
            for r in orjson.loads(d.raw_views):
                event = EngagementEvent.from_dict(r)
                if event.kind in ANALYTICS_KINDS and event.event_id not in seen:
                    seen.add(event.event_id)
                    raw.append((event, token))
            if raw:
                out.append(raw)
    return out


def per_content(parts: Sequence[Unit]) -> list[Unit]:
    """The units, each of one content: an entry's raw view events usually belong to
    several contents, and are split by content, each part with a token of its own
    (the entry's and the content's), which names those events exactly as the
    entry's token does. Always, whatever the read holds: a redelivery must give
    every event the token it had (see ``by_content``)."""
    out: list[Unit] = []
    for unit in parts:
        cid = unit[0][0].content_id
        if all(e.content_id == cid for e, _ in unit):
            out.append(unit)
            continue
        split: dict[str, Unit] = {}
        for event, token in unit:
            split.setdefault(event.content_id, []).append((event, f"{token}:{event.content_id}"))
        out.extend(split.values())
    return out


def by_content(parts: Sequence[Unit]) -> list[Unit]:
    """Units of one content each (``per_content``) in content order: the contents
    in the order they first appear, each content's units in log order.

    A group's bucket writes are about three per content it holds (its minute,
    hour and day buckets) plus its creators', so a read's events of one content
    are best written together: a read of a backlog holds many events of each
    content, spread over every entry. Nothing else depends on the order: the
    counters add up, the sketches are sets, the first likes a minimum."""
    by: dict[str, list[Unit]] = {}
    for unit in parts:
        by.setdefault(unit[0][0].content_id, []).append(unit)
    return [unit for units_of in by.values() for unit in units_of]


def dense(parts: Sequence[Unit], minutes: float = DENSE_MINUTES) -> bool:
    """Whether each content's events in a read fall within a few minutes
    (``minutes`` on average): then ordering the read by content (``by_content``)
    gathers them into the same few buckets, one write each. A read that spans
    days (a history replayed) has a minute bucket per event or two either way,
    and grouping its contents apart would spread each group over more hours and
    days, for more writes."""
    contents: set[str] = set()
    cells: set[tuple[str, int]] = set()
    for unit in parts:
        for e, _ in unit:
            contents.add(e.content_id)
            cells.add((e.content_id, e.occurred_at_ms // MINUTE_MS))
    return len(cells) <= minutes * len(contents)


def cut(
    parts: Sequence[Unit],
    creators: Mapping[str, str] | None = None,
    max_tokens: int = GROUP_TOKENS,
    max_events: int = GROUP_EVENTS,
) -> list[Unit]:
    """Units cut into groups in which at most ``max_tokens`` tokens reach any one
    creator's buckets (``creators``: content id -> creator id; a content without
    one counts for itself; None: every event counts for one shared scope, i.e. at
    most ``max_tokens`` per group) and, where a unit allows, ``max_events``
    events (a single entry's raw view events stay together: they share one
    token)."""
    out: list[Unit] = []
    current: Unit = []
    tokens: dict[str, set[str]] = {}

    def scope_of(event: EngagementEvent) -> str:
        if creators is None:
            return ""
        creator = creators.get(event.content_id)
        return content_scope(event.content_id) if creator is None else creator_scope(creator)

    def grown(scope: str, new: set[str]) -> int:
        have = tokens.get(scope)
        return len(new) if have is None else len(have) + len(new - have)

    for unit in parts:
        adds: dict[str, set[str]] = {}
        for event, token in unit:
            adds.setdefault(scope_of(event), set()).add(token)
        full = len(current) + len(unit) > max_events or any(
            grown(s, new) > max_tokens for s, new in adds.items()
        )
        if current and full:
            out.append(current)
            current, tokens = [], {}
        current.extend(unit)
        for s, new in adds.items():
            tokens.setdefault(s, set()).update(new)
    if current:
        out.append(current)
    return out


def groups(
    deliveries: Sequence[Delivery],
    max_tokens: int = GROUP_TOKENS,
    max_events: int = GROUP_EVENTS,
    creators: Mapping[str, str] | None = None,
) -> list[Unit]:
    """The deliveries' analytics events with their guard tokens (``units``), cut
    into groups (``cut``)."""
    return cut(units(deliveries), creators, max_tokens, max_events)


class AnalyticsWorker:
    def __init__(
        self,
        consumer: EventConsumer,
        contents: ContentRepository,
        rollups: RollupWriter,
        sketches: SketchWriter,
        applied: AppliedEvents,
        *,
        batch: int = 200,
        block_ms: int = 500,
        claim_idle_ms: int = 30_000,
        group_tokens: int = GROUP_TOKENS,
    ) -> None:
        self._consumer = consumer
        self._contents = contents
        self._rollups = rollups
        self._sketches = sketches
        self._applied = applied
        self._batch = batch
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._group_tokens = group_tokens
        self.applied_batches = 0

    @property
    def batch(self) -> int:
        """Entries one read asks of each partition."""
        return self._batch

    async def process(self, deliveries: Sequence[Delivery]) -> int:
        """Apply the deliveries' events, then acknowledge them; returns how many
        events were applied (not applied before)."""
        if not deliveries:
            return 0
        applied = 0
        parts = units(deliveries)
        # The contents' creators, once for the whole read: they bound the groups
        # (tokens per creator's buckets) and the fold rolls up into them.
        ids = list(dict.fromkeys(e.content_id for unit in parts for e, _ in unit))
        found = await self._contents.get_many(ids) if ids else {}
        creators = {cid: c.creator_id for cid, c in found.items()}
        parts = per_content(parts)
        if dense(parts):
            parts = by_content(parts)
        for group in cut(parts, creators, self._group_tokens):
            applied += await self._apply(group, found, creators)
        # Only after every group is written and remembered: a crash before this
        # redelivers, and steps 1 and 2 turn the redelivery into a no-op.
        await self._consumer.ack(deliveries)
        self.applied_batches += 1
        ANALYTICS_BATCHES.inc()
        return applied

    async def _apply(
        self, group: Unit, found: Mapping[str, Content], creators: Mapping[str, str]
    ) -> int:
        events = [e for e, _ in group]
        fresh = await self._applied.unapplied(events)
        ANALYTICS_SKIPPED.inc(len(events) - len(fresh))
        if not fresh:
            return 0
        token_of = {e.event_id: token for e, token in group}
        unknown = {e.content_id for e in fresh} - set(found)
        if unknown:
            # Events exist only for registered contents; without one there is no
            # creator to roll up into, so these count for their content alone.
            log.warning("analytics events of unregistered contents", extra={"ids": sorted(unknown)})
        folded = fold(fresh, creators, lambda e: token_of[e.event_id])
        _, redone = await asyncio.gather(self._sketches.add(folded), self._rollups.apply(folded))
        ANALYTICS_REDONE.inc(redone)
        await self._applied.remember(fresh)
        ANALYTICS_EVENTS.inc(len(fresh))
        return len(fresh)

    async def run_once(self) -> int:
        """Drain what is there (own pending first), then return the count."""
        return await drain(self._consumer, self._batch, self.process)

    async def run(self, stop: asyncio.Event) -> None:
        await self._consumer.ensure_groups()
        await self.run_once()
        await consume(
            self._consumer,
            self.process,
            stop,
            name="analytics",
            batch=self._batch,
            block_ms=self._block_ms,
            claim_idle_ms=self._claim_idle_ms,
        )
