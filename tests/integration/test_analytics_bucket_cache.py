"""Dashboards read through the bucket cache give what an uncached reader gives,
whatever was written between two reads; and a bucket rewritten since is read again."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from domain.analytics import AnalyticsPorts, Granularity, TimeRange, ms_of
from domain.analytics_reads import content_analytics, creator_analytics
from domain.contents import Content
from domain.events import RAW_VIEW, REACTION, EngagementEvent
from domain.identity import Actor
from domain.integrity import SUSPECT_LIKES
from storage.mongo_analytics import COLLECTIONS, MongoAnalytics, bucket_id
from storage.mongo_events import MongoEventArchive
from storage.redis_analytics import RedisAnalytics
from tests.integration.doubles import FakeConsumer
from tests.integration.test_analytics_rebuild import CONTENTS, NOW, Stream, deliveries, schedule
from workers.analytics import AnalyticsWorker
from workers.analytics_rebuild import rebuild

ADMIN = Actor("ops", frozenset({"admin"}))
D, H = Granularity.DAY, Granularity.HOUR
WEEK = TimeRange(NOW - timedelta(days=7), NOW)
TWO_DAYS = TimeRange(NOW - timedelta(hours=48), NOW)
THREE_DAYS_AGO = NOW - timedelta(days=3)


async def dashboards(deps: Any, ports: AnalyticsPorts) -> list[Any]:
    out: list[Any] = []
    for cid, *_ in CONTENTS:
        for r, g in ((WEEK, D), (TWO_DAYS, H), (WEEK, H)):
            out.append(await content_analytics(deps, ports, ADMIN, cid, r, g))
    for creator in ("alice", "bob"):
        out.append(await creator_analytics(deps, ports, ADMIN, creator, WEEK, D, top=5))
    return out


def late(kind_deltas: dict[str, int], user: str, n: int) -> EngagementEvent:
    """A reaction of three days ago arriving now."""
    data = {"before": None, "after": "LIKE", "region": "DE"}
    return EngagementEvent(
        f"late-{n}", REACTION, "a1", user, ms_of(THREE_DAYS_AGO), kind_deltas, None, data
    )


@pytest.fixture
async def setup(runtime, deps, mongo_db, app_redis):
    keys = runtime.services.keys
    for cid, creator, kind, duration, _ in CONTENTS:
        await deps.contents.insert(Content(cid, creator, kind, NOW - timedelta(days=6), duration))
    sketches = RedisAnalytics(app_redis, keys, 3_600_000)
    writer = MongoAnalytics(mongo_db, cache_entries=0)
    worker = AnalyticsWorker(FakeConsumer(), deps.contents, writer, sketches, sketches)
    cached = AnalyticsPorts(MongoAnalytics(mongo_db, cache_entries=10_000), sketches)
    plain = AnalyticsPorts(MongoAnalytics(mongo_db, cache_entries=0), sketches)
    return keys, worker, cached, plain


async def test_cached_reads_equal_uncached_ones_across_writes(deps, mongo_db, app_redis, setup):
    keys, worker, cached, plain = setup
    rng = random.Random(5)
    events = Stream(20261201).build()
    # A tenth of the stream comes late, after the dashboards were read once.
    held = set(rng.sample(range(len(events)), len(events) // 10))
    now_events = [e for i, e in enumerate(events) if i not in held]
    for batch in schedule(now_events, keys, rng):
        await worker.process(batch)
    first = await dashboards(deps, cached)
    assert first == await dashboards(deps, plain)
    assert await dashboards(deps, cached) == first  # from the cache now

    # Late events into past days and hours: the held tenth, a like into a day three
    # days ago, and one by an actor excluded by integrity at the time (it changes the
    # reactions, not the public likes) into the same bucket.
    extra = [
        late({"r:LIKE": 1, "likes": 1}, "late-user", 1),
        late({"r:LIKE": 1, SUSPECT_LIKES: 1}, "excluded-user", 2),
    ]
    # Entry ids of their own: a raw view event's guard token names its entry.
    arriving = [
        *deliveries([events[i] for i in sorted(held)], keys, rng, 200_000),
        *deliveries(extra, keys, rng, 500_000),
    ]
    for i in range(0, len(arriving), 10):
        await worker.process(arriving[i : i + 10])
    second = await dashboards(deps, cached)
    assert second == await dashboards(deps, plain)
    assert second != first

    # A rebuild deletes and rewrites every bucket from the archive.
    archive = MongoEventArchive(mongo_db)
    everything = [*events, *extra]
    await archive.store([e for e in everything if e.kind != RAW_VIEW])
    await archive.store_raw_views([e.to_dict() for e in everything if e.kind == RAW_VIEW])
    assert await rebuild(mongo_db, app_redis, keys, deps.contents) == len(everything)
    assert await dashboards(deps, cached) == await dashboards(deps, plain) == second

    # A bucket written before versions existed is always read again; one that
    # expired drops out.
    day = mongo_db[COLLECTIONS[D]]
    a1_day = bucket_id(
        "c:a1", ms_of(THREE_DAYS_AGO.replace(hour=0, minute=0, second=0, microsecond=0))
    )
    await day.update_one({"_id": a1_day}, {"$unset": {"v": ""}, "$inc": {"views": 7}})
    third = await dashboards(deps, cached)
    assert third == await dashboards(deps, plain)
    assert third != second
    assert (await day.delete_one({"_id": a1_day})).deleted_count == 1
    fourth = await dashboards(deps, cached)
    assert fourth == await dashboards(deps, plain)
    assert fourth != third


class Recording:
    """A collection that records the _ids and projection of each find."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.finds: list[tuple[list[str], dict[str, int]]] = []

    def find(self, filter: dict[str, Any], projection: dict[str, int]) -> Any:
        self.finds.append((list(filter["_id"]["$in"]), dict(projection)))
        return self.inner.find(filter, projection)


async def test_only_a_changed_bucket_is_read_again(deps, mongo_db, setup):
    keys, worker, cached, _ = setup
    rng = random.Random(6)
    for batch in schedule(Stream(20261202).build(), keys, rng):
        await worker.process(batch)
    rollups = cached.rollups
    assert isinstance(rollups, MongoAnalytics)
    recording = Recording(rollups._cols[D])
    rollups._cols[D] = recording

    async def read() -> Any:
        return await content_analytics(deps, cached, ADMIN, "a1", WEEK, D)

    await read()  # nothing cached: one full read
    assert len(recording.finds) == 1 and "v" in recording.finds[0][1]
    ids = recording.finds[0][0]
    recording.finds.clear()
    await read()  # every bucket cached at its version: versions only
    assert [p for _, p in recording.finds] == [{"v": 1}]
    recording.finds.clear()

    await worker.process(
        deliveries([late({"r:LIKE": 1, "likes": 1}, "u-new", 3)], keys, rng, 600_000)
    )
    changed = bucket_id(
        "c:a1", ms_of(THREE_DAYS_AGO.replace(hour=0, minute=0, second=0, microsecond=0))
    )
    assert changed in ids
    after = await read()
    assert [i for i, _ in recording.finds] == [ids, [changed]]
    assert after == await content_analytics(
        deps,
        AnalyticsPorts(MongoAnalytics(mongo_db, cache_entries=0), cached.sketches),
        ADMIN,
        "a1",
        WEEK,
        D,
    )
