"""Rebuild analytics from the durable archive (``events`` and ``view_events``).

Deletes the affected rollups and sketches, then folds the archived events again
through the same fold and stores as the worker. Scopes:

- everything (no ``content_id``);
- one content: its own buckets, and its creator's, recomputed from all of that
  creator's contents (the creator's buckets sum them all);
- with ``since``: only buckets from that day (UTC) on. First likes are then kept
  (an earlier first like stays the first) and only lowered by what is rebuilt.

Only what the archive still holds can come back: with ARCHIVE_TTL_S set, rebuild
no further back than that (``since``), or older buckets are left empty.

It can run beside the analytics worker. An event archived recently (within half
the dedupe horizon, EVENT_DEDUPE_HORIZON_S) that the worker has not applied yet
(it is not in the applied set) is left to the worker, which applies it to every
scope when it gets there; older ones were applied long ago. What remains is a
narrow race with a running worker: an event it writes to a bucket just after
the rebuild deleted it and remembers just before the rebuild reads it is
counted twice; one it applied before the deletion that the archiver had not
stored yet when the rebuild read is missing. Stopping the worker (its backlog
waits in the log) during the rebuild removes both.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.analytics import (
    ANALYTICS_KINDS,
    Granularity,
    bucket_start,
    content_scope,
    creator_scope,
    fold,
    ms_of,
)
from domain.errors import ContentNotFound
from domain.events import RAW_VIEW, EngagementEvent
from domain.ports import ContentRepository
from storage.keys import Keys
from storage.mongo_analytics import MongoAnalytics
from storage.redis_analytics import RedisAnalytics

BATCH = 5000


class _Rebuild:
    def __init__(
        self,
        rollups: MongoAnalytics,
        sketches: RedisAnalytics,
        contents: ContentRepository,
        scopes: list[str] | None,
        recent_after: datetime,
    ) -> None:
        self._rollups = rollups
        self._sketches = sketches
        self._contents = contents
        self._scopes = scopes
        self._recent_after = recent_after
        self._run = uuid.uuid4().hex[:12]
        self._chunks = 0
        self._old: list[EngagementEvent] = []
        self._recent: list[EngagementEvent] = []
        self.events = 0

    async def add(self, event: EngagementEvent, archived_at: Any) -> None:
        recent = isinstance(archived_at, datetime) and _aware(archived_at) >= self._recent_after
        (self._recent if recent else self._old).append(event)
        if len(self._old) + len(self._recent) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        events, self._old = self._old, []
        recent, self._recent = self._recent, []
        # The worker's backlog: it will apply these itself, to every scope.
        backlog = {e.event_id for e in await self._sketches.unapplied(recent)}
        events += [e for e in recent if e.event_id not in backlog]
        if not events:
            return
        found = await self._contents.get_many(list(dict.fromkeys(e.content_id for e in events)))
        # One guard token per chunk: each event is in exactly one chunk, once.
        token = f"rebuild:{self._run}:{self._chunks}"
        self._chunks += 1
        folded = fold(events, {cid: c.creator_id for cid, c in found.items()}, lambda _: token)
        if self._scopes is not None:
            folded = folded.only(self._scopes)
        await self._sketches.add(folded)
        await self._rollups.apply(folded)
        self.events += len(events)


def _aware(moment: datetime) -> datetime:
    # A client opened without tz_aware returns naive UTC dates.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def rebuild(
    db: Any,
    redis: Any,
    keys: Keys,
    contents: ContentRepository,
    content_id: str | None = None,
    since: datetime | None = None,
    *,
    dedupe_horizon_s: int = 3600,
) -> int:
    """Recompute analytics from the archive; returns how many archived events
    were folded (those of other contents of the creator included, the worker's
    backlog not)."""
    if since is not None and (since.tzinfo is None or since.utcoffset() is None):
        raise ValueError("since must be timezone-aware")
    since_ms = None if since is None else bucket_start(ms_of(since), Granularity.DAY)
    rollups = MongoAnalytics(db)
    sketches = RedisAnalytics(redis, keys, dedupe_horizon_s * 1000)

    content_ids: list[str] | None = None
    scopes: list[str] | None = None
    if content_id is not None:
        content = (await contents.get_many([content_id])).get(content_id)
        if content is None:
            raise ContentNotFound(f"no content registered with id {content_id!r}")
        cursor = db["contents"].find({"creator_id": content.creator_id}, {"_id": 1})
        content_ids = sorted({doc["_id"] async for doc in cursor} | {content_id})
        scopes = [content_scope(content_id), creator_scope(content.creator_id)]
        await rollups.delete(
            scopes, since_ms, first_likes_of=[content_id] if since_ms is None else None
        )
    else:
        await rollups.delete(None, since_ms, all_first_likes=since_ms is None)
    await sketches.delete(scopes, since_ms)

    run = _Rebuild(
        rollups,
        sketches,
        contents,
        scopes,
        datetime.now(UTC) - timedelta(seconds=dedupe_horizon_s / 2),
    )
    event_filter: dict[str, Any] = {"kind": {"$in": sorted(ANALYTICS_KINDS)}}
    element: dict[str, Any] = {}
    if content_ids is not None:
        event_filter["content_id"] = element["content_id"] = {"$in": content_ids}
    if since_ms is not None:
        event_filter["occurred_at_ms"] = element["occurred_at_ms"] = {"$gte": since_ms}

    among = None if content_ids is None else set(content_ids)

    def wanted(raw: dict[str, Any]) -> bool:
        if raw.get("kind") not in ANALYTICS_KINDS:
            return False
        if among is not None and raw.get("content_id") not in among:
            return False
        return since_ms is None or int(raw.get("occurred_at_ms", 0)) >= since_ms

    # Raw view events are archived one document per log batch, and a batch handed
    # over again in another grouping is archived again: each is folded once.
    raw_seen: set[str] = set()
    async for doc in db["events"].find(event_filter, batch_size=BATCH):
        event = EngagementEvent.from_dict(doc)
        if event.kind == RAW_VIEW:
            if event.event_id in raw_seen:
                continue
            raw_seen.add(event.event_id)
        await run.add(event, doc.get("archived_at"))
    batches = db["view_events"].find(
        {"events": {"$elemMatch": element}} if element else {}, batch_size=100
    )
    async for doc in batches:
        for raw in doc.get("events", []):
            if not wanted(raw) or raw["event_id"] in raw_seen:
                continue
            raw_seen.add(raw["event_id"])
            await run.add(EngagementEvent.from_dict(raw), doc.get("archived_at"))
    await run.flush()
    return run.events
