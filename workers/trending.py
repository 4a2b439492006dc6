"""The trending worker: event log -> ranking signals and trend scores (Redis),
effectively once, and the live trending lists.

Per batch of deliveries:

1. per partition, the batch's events (counted views, reactions, raw views) are
   folded into the signals' minute counts (domain/signals.py) and the decayed
   trend sums (domain/trending.py), and applied by one script call per partition,
   all in one round trip. The script refuses a partition's batch if any of its
   tokens was applied before and names them; those events are dropped and the
   rest folded and applied again;
2. the deliveries are acknowledged;
3. the signals of the changed contents are computed and appended to their
   partitions' signals streams;
4. the top lists of region "all" the batch touched are read, and a list whose
   order changed is published on its channel, at most once per
   ``publish_interval_s`` per channel (a list held back goes out at the next
   batch or tick() after the interval).

Tokens: as in the analytics worker (workers/analytics.py), an event's id, except
for raw view events, which only ever travel in one log entry and take that
entry's token. Because a partition's batch is written with its tokens in one
script, a crash between 1 and 2 leaves nothing half done: the redelivery is
refused whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from domain import signals, trending
from domain.events import RAW_VIEW, REACTION, VIEW, EngagementEvent
from domain.log import Delivery, EventConsumer, consume, drain
from domain.ports import Clock, ContentRepository, Publisher
from domain.trending import ALL_KINDS, ALL_REGIONS, TRUST_ALL, WINDOWS, Integrity, TrendWindow
from storage.redis_scripts import Call
from storage.redis_trending import RedisTrending, TopQuery
from workers.analytics import log_token
from workers.metrics import TRENDING_BATCHES, TRENDING_EVENTS, TRENDING_SKIPPED

log = logging.getLogger(__name__)

TRENDING_KINDS = frozenset({VIEW, REACTION, RAW_VIEW})
# A partition's batch is refused again only if another writer applied some of its
# tokens in between (a second worker on a claimed delivery): a few tries suffice.
MAX_ATTEMPTS = 5
# Contents whose kind a worker remembers (a few MB).
KINDS_CACHED = 100_000


@dataclass(slots=True)
class _Channel:
    shown: list[str] | None = None  # the ids last published
    sent_at: float = float("-inf")  # when (clock seconds)
    pending: str | None = None  # a changed list held back by the interval
    pending_ids: list[str] | None = None


Tokened = tuple[EngagementEvent, str]  # an event and its token


@dataclass(slots=True)
class Applied:
    events: int = 0  # applied (not applied before)
    changed: set[str] = field(default_factory=set)  # contents whose signals changed
    lists: set[tuple[TrendWindow, str]] = field(default_factory=set)  # (window, kind) touched


def lists_of(
    events: Iterable[EngagementEvent], kinds: Mapping[str, str]
) -> set[tuple[TrendWindow, str]]:
    """The (window, kind) lists the events can change: their contents' kinds and
    every kind, in every window (an event of weight 0 changes none)."""
    out: set[tuple[TrendWindow, str]] = set()
    for e in events:
        if trending.weight(e) == 0.0 or e.content_id not in kinds:
            continue
        for window in WINDOWS:
            out.add((window, kinds[e.content_id]))
            out.add((window, ALL_KINDS))
    return out


async def apply_events(
    store: RedisTrending,
    by_partition: Mapping[int, list[Tokened]],
    now_ms: int,
    kinds: Mapping[str, str],
    integrity: Integrity = TRUST_ALL,
    *,
    lifetime_only: bool = False,
) -> Applied:
    """Every partition's events folded and applied, one round trip per attempt: a
    partition refused for tokens applied before is folded again without their
    events. ``lifetime_only``: only the lifetime watch time and reactor sketch
    (the rebuild's pass over events older than every window)."""
    out = Applied()
    todo = {p: items for p, items in by_partition.items() if items}
    for _ in range(MAX_ATTEMPTS):
        if not todo:
            return out
        order = list(todo)
        calls = [_call(store, p, todo[p], now_ms, kinds, integrity, lifetime_only) for p in order]
        retry: dict[int, list[Tokened]] = {}
        for p, conflict in zip(order, await store.apply_many(calls), strict=True):
            items = todo[p]
            if conflict is None:
                out.events += len(items)
                out.changed.update(e.content_id for e, _ in items)
                if not lifetime_only:
                    out.lists |= lists_of((e for e, _ in items), kinds)
                continue
            refused = set(conflict)
            rest = [(e, t) for e, t in items if t not in refused]
            TRENDING_SKIPPED.inc(len(items) - len(rest))
            if rest:
                retry[p] = rest
        todo = retry
    if todo:
        raise RuntimeError("a trending batch was refused on every attempt")
    return out


def _call(
    store: RedisTrending,
    partition: int,
    items: list[Tokened],
    now_ms: int,
    kinds: Mapping[str, str],
    integrity: Integrity,
    lifetime_only: bool,
) -> Call:
    events = [e for e, _ in items]
    deltas = signals.fold(events)
    if lifetime_only:
        for delta in deltas.values():
            delta.minutes = {}
    return store.apply_call(
        partition,
        [t for _, t in items],
        now_ms,
        deltas,
        {} if lifetime_only else trending.fold(events, integrity),
        {cid: kinds[cid] for cid in {e.content_id for e in events} if cid in kinds},
    )


def tokened_events(
    deliveries: Sequence[Delivery], partition: Callable[[str], int]
) -> dict[int, list[Tokened]]:
    """Per partition (of each event's content), the deliveries' trending events with
    their tokens, each event once (the first time it appears)."""
    out: dict[int, list[Tokened]] = {}
    seen: set[str] = set()

    def take(event: EngagementEvent, token: str) -> None:
        if event.kind in TRENDING_KINDS and event.event_id not in seen:
            seen.add(event.event_id)
            out.setdefault(partition(event.content_id), []).append((event, token))

    for d in deliveries:
        for event in d.events:
            take(event, event.event_id)
        if d.raw_views:
            token = log_token(d)
            for raw in orjson.loads(d.raw_views):
                take(EngagementEvent.from_dict(raw), token)
    return out


class TrendingWorker:
    def __init__(
        self,
        consumer: EventConsumer,
        contents: ContentRepository,
        store: RedisTrending,
        publisher: Publisher,
        clock: Clock,
        *,
        integrity: Integrity = TRUST_ALL,
        batch: int = 200,
        block_ms: int = 500,
        claim_idle_ms: int = 30_000,
        top_n: int = 20,
        publish_interval_s: float = 1.0,
    ) -> None:
        self._consumer = consumer
        self._contents = contents
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._integrity = integrity
        self._batch = batch
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._top_n = top_n
        self._interval = publish_interval_s
        # A content's kind never changes: asked of MongoDB once per process.
        self._kinds: dict[str, str] = {}
        self._channels: dict[str, _Channel] = {}
        self.applied_batches = 0

    def _now_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000)

    async def process(self, deliveries: Sequence[Delivery]) -> int:
        """Apply the deliveries' events, acknowledge them, then publish what
        changed; returns how many events were applied (not applied before)."""
        if not deliveries:
            await self.tick()
            return 0
        by_partition = tokened_events(deliveries, self._store.keys.partition)
        await self._learn_kinds({e.content_id for items in by_partition.values() for e, _ in items})
        now_ms = self._now_ms()
        done = await self._apply(by_partition, now_ms)
        # Only after every partition is written: a crash before this redelivers,
        # and the applied tokens turn the redelivery into a no-op.
        await self._consumer.ack(deliveries)
        self.applied_batches += 1
        TRENDING_BATCHES.inc()
        TRENDING_EVENTS.inc(done.events)
        await self._publish_signals(done.changed, now_ms)
        await self._publish_lists(done.lists)
        return done.events

    async def _learn_kinds(self, content_ids: set[str]) -> None:
        missing = sorted(content_ids - self._kinds.keys())
        if missing:
            if len(self._kinds) + len(missing) > KINDS_CACHED:
                # Bounded memory over a catalog of any size: start again.
                self._kinds.clear()
            found = await self._contents.get_many(missing)
            self._kinds.update((cid, c.kind.value) for cid, c in found.items())

    def _known(self, items: list[Tokened]) -> list[Tokened]:
        unknown = {e.content_id for e, _ in items if e.content_id not in self._kinds}
        if not unknown:
            return items
        # Events exist only for registered contents; without a kind there is no
        # list to rank them in.
        log.warning("trending events of unregistered contents", extra={"ids": sorted(unknown)})
        kept = [(e, t) for e, t in items if e.content_id in self._kinds]
        TRENDING_SKIPPED.inc(len(items) - len(kept))
        return kept

    async def _apply(self, by_partition: dict[int, list[Tokened]], now_ms: int) -> Applied:
        todo = {p: self._known(items) for p, items in by_partition.items()}
        return await apply_events(self._store, todo, now_ms, self._kinds, self._integrity)

    async def _publish_signals(self, changed: set[str], now_ms: int) -> None:
        if not changed:
            return
        ids = sorted(changed)
        raw = await self._store.raw_signals(ids)
        await self._store.publish_signals(
            [signals.compute(cid, raw.get(cid, signals.EMPTY), now_ms) for cid in ids]
        )

    async def _publish_lists(self, touched: set[tuple[TrendWindow, str]]) -> None:
        order = sorted(touched, key=lambda wk: (wk[0].value, wk[1]))
        queries = [TopQuery(w, kind, ALL_REGIONS, self._top_n) for w, kind in order]
        lists = await self._store.tops(queries)
        keys = self._store.keys
        for (window, kind), ranked in zip(order, lists, strict=True):
            channel = self._channels.setdefault(
                keys.trend_channel(WINDOWS[window].code, kind), _Channel()
            )
            ids = [r.content_id for r in ranked]
            if ids == channel.shown:
                channel.pending = channel.pending_ids = None  # changed back: nothing to say
                continue
            channel.pending = orjson.dumps([[r.content_id, r.frame] for r in ranked]).decode()
            channel.pending_ids = ids
        await self.tick()

    async def tick(self) -> None:
        """Publish the changed lists whose channel's interval has passed."""
        now = self._clock.now().timestamp()
        messages: dict[str, str] = {}
        for name, channel in self._channels.items():
            if channel.pending is None or now - channel.sent_at < self._interval:
                continue
            messages[name] = channel.pending
            channel.shown, channel.sent_at = channel.pending_ids, now
            channel.pending = channel.pending_ids = None
        if messages:
            await self._publisher.publish(messages)

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
            name="trending",
            batch=self._batch,
            block_ms=self._block,
            claim_idle_ms=self._claim_idle_ms,
        )

    def _block(self) -> int:
        # Short blocks while a list waits for its interval: tick() sends it.
        if any(c.pending is not None for c in self._channels.values()):
            return min(self._block_ms, 250)
        return self._block_ms
