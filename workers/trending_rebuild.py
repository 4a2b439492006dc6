"""Rebuild ranking signals and trend scores from the durable archive (``events``
and ``view_events``), after a Redis loss.

Deletes every trending key (storage/redis_trending.py, flush), then applies the
archived events through the same folds and script as the worker
(workers/trending.py), in chunks of CHUNK:

- events of the last ``horizon`` (default 14 days), in time order, in full:
  trend sums, minute ring, watch time, reactors. Fourteen days is twice the
  longest time constant, DAY's baseline (7 days): an event older than that has
  decayed below e^-2 (13.5%) of its weight in DAY's baseline sum, below e^-14
  (8e-7) in the two 24 h sums (DAY's recent, HOUR's baseline) and to nothing in
  the others. So the lists come back as they were except for that tail of DAY's
  baseline (a content busy more than 14 days ago comes back with a lower DAY
  expectation, so a little hotter); the minute ring only ever holds the last 70
  minutes;
- older events (``lifetime``), in any order: only the lifetime watch time and
  the reactor sketch.

Only what the archive still holds comes back: with ARCHIVE_TTL_S set, the
lifetime watch time and the reactor sketch hold only the events it kept (and a
TTL shorter than the horizon shortens the trend sums' memory too).

Tokens: recent events by their ids, in the applied set the worker uses, so an
event the worker applies after the flush is not applied again by the rebuild,
and the reverse (its raw view events are the exception: the worker's token for
them is their log entry, so those applied by both count twice in watch time).
Older events get one token per chunk, each event being in one chunk once.
Stopping the trending worker during the rebuild (its backlog waits in the log)
avoids every overlap.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

from domain.events import RAW_VIEW, REACTION, VIEW, EngagementEvent
from domain.ports import Clock, ContentRepository
from domain.trending import TRUST_ALL, WINDOWS, Integrity, TrendWindow
from storage.redis_trending import RedisTrending
from workers.trending import Tokened, apply_events

CHUNK = 5_000
# Twice the longest time constant, DAY's baseline.
HORIZON = timedelta(seconds=2 * WINDOWS[TrendWindow.DAY].baseline_s)
KINDS = [VIEW, REACTION, RAW_VIEW]


class _Applier:
    def __init__(
        self,
        store: RedisTrending,
        contents: ContentRepository,
        now_ms: int,
        integrity: Integrity,
        *,
        lifetime_only: bool,
    ) -> None:
        self._store = store
        self._contents = contents
        self._now_ms = now_ms
        self._integrity = integrity
        self._lifetime_only = lifetime_only
        self._kinds: dict[str, str] = {}
        self._run = uuid.uuid4().hex[:12]
        self._chunks = 0
        self._pending: list[EngagementEvent] = []
        self.events = 0

    async def add(self, event: EngagementEvent) -> None:
        self._pending.append(event)
        if len(self._pending) >= CHUNK:
            await self.flush()

    async def flush(self) -> None:
        events, self._pending = self._pending, []
        if not events:
            return
        missing = sorted({e.content_id for e in events} - set(self._kinds))
        if missing:
            found = await self._contents.get_many(missing)
            self._kinds.update((cid, c.kind.value) for cid, c in found.items())
        # Unregistered contents have no list to rank in (the worker skips them too).
        events = [e for e in events if e.content_id in self._kinds]
        chunk_token = f"rebuild:{self._run}:{self._chunks}"
        self._chunks += 1
        by_partition: dict[int, list[Tokened]] = {}
        for e in events:
            token = chunk_token if self._lifetime_only else e.event_id
            by_partition.setdefault(self._store.keys.partition(e.content_id), []).append((e, token))
        done = await apply_events(
            self._store,
            by_partition,
            self._now_ms,
            self._kinds,
            self._integrity,
            lifetime_only=self._lifetime_only,
        )
        self.events += done.events


async def _archived(
    db: Any, occurred: Mapping[str, int], *, ordered: bool
) -> AsyncIterator[EngagementEvent]:
    """The archived events of ``occurred`` (a range on occurred_at_ms): ``events``
    (by time and id when ``ordered``), then the raw view events of ``view_events``,
    each once (a batch handed over again in another grouping is archived again)."""
    query = {"kind": {"$in": KINDS}, "occurred_at_ms": dict(occurred)}
    cursor = db["events"].find(query, batch_size=CHUNK)
    if ordered:
        cursor = cursor.sort([("occurred_at_ms", 1), ("_id", 1)])
    raw_seen: set[str] = set()
    async for doc in cursor:
        event = EngagementEvent.from_dict(doc)
        if event.kind == RAW_VIEW:
            raw_seen.add(event.event_id)
        yield event
    # Raw view events only add watch time, which adds up in any order.
    batches = db["view_events"].find(
        {"events": {"$elemMatch": {"occurred_at_ms": dict(occurred)}}}, batch_size=100
    )
    low, high = occurred.get("$gte"), occurred.get("$lt")
    async for doc in batches:
        for raw in doc.get("events", []):
            t = int(raw.get("occurred_at_ms", 0))
            if raw.get("kind") != RAW_VIEW or raw["event_id"] in raw_seen:
                continue
            if (low is not None and t < low) or (high is not None and t >= high):
                continue
            raw_seen.add(raw["event_id"])
            yield EngagementEvent.from_dict(raw)


async def rebuild(
    db: Any,
    store: RedisTrending,
    contents: ContentRepository,
    clock: Clock,
    *,
    horizon: timedelta = HORIZON,
    lifetime: bool = True,
    integrity: Integrity = TRUST_ALL,
) -> int:
    """Recompute trending and ranking signals from the archive; returns how many
    archived events were applied (those of unregistered contents not)."""
    now_ms = int(clock.now().timestamp() * 1000)
    since_ms = now_ms - int(horizon.total_seconds() * 1000)
    await store.flush()
    total = 0
    recent = _Applier(store, contents, now_ms, integrity, lifetime_only=False)
    async for event in _archived(db, {"$gte": since_ms}, ordered=True):
        await recent.add(event)
    await recent.flush()
    total += recent.events
    if lifetime:
        older = _Applier(store, contents, now_ms, integrity, lifetime_only=True)
        async for event in _archived(db, {"$lt": since_ms}, ordered=False):
            await older.add(event)
        await older.flush()
        total += older.events
    return total
