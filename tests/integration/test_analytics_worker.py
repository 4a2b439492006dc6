"""The analytics worker: effectively once (redelivery, replay, a crash between the
write and the applied set), through the real event log, and from the use cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from domain.analytics import (
    AnalyticsPorts,
    Completion,
    Granularity,
    TimeRange,
    fold,
    ms_of,
)
from domain.analytics_reads import content_analytics
from domain.catalog import register_content
from domain.contents import Content, ContentKind
from domain.events import RAW_VIEW, REACTION, VIEW, EngagementEvent
from domain.identity import Actor
from domain.likes import set_reaction
from domain.log import Delivery
from domain.reactions import ReactionType as R
from domain.view_recording import record_views
from storage.keys import Keys
from storage.mongo_analytics import COLLECTIONS, MongoAnalytics, bucket_id
from storage.redis_analytics import RedisAnalytics
from storage.redis_stream import RedisEventConsumer, RedisEventLog
from tests.integration.conftest import SERVICE
from tests.integration.doubles import CrashOnce, FakeClock, FakeConsumer
from workers.analytics import AnalyticsWorker

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
NOW_MS = ms_of(NOW)
ALICE = Actor("alice")


def like(user: str, ms: int, version: int = 1) -> EngagementEvent:
    return EngagementEvent(
        f"r-{user}-{version}",
        REACTION,
        "c1",
        user,
        ms,
        {"likes": 1, "r:LIKE": 1},
        None,
        {"before": None, "after": "LIKE", "region": "US"},
    )


def counted(viewer: str, ms: int) -> EngagementEvent:
    return EngagementEvent(f"v-{viewer}", VIEW, "c1", viewer, ms, {"views": 1}, viewer, {})


def watched(n: int, ms: int, accepted: int = 1000) -> EngagementEvent:
    return EngagementEvent(f"w-{n}", RAW_VIEW, "c1", "d:x", ms, {}, None, {"accepted_ms": accepted})


def delivery(msg: str, events: list[EngagementEvent]) -> Delivery:
    rest = tuple(e for e in events if e.kind != RAW_VIEW)
    raws = [e.to_dict() for e in events if e.kind == RAW_VIEW]
    return Delivery(1, msg, rest, orjson.dumps(raws) if raws else None, len(raws))


@pytest.fixture
async def stores(runtime, deps):
    keys = runtime.services.keys
    rollups = MongoAnalytics(runtime.db)
    sketches = RedisAnalytics(runtime.redis, keys, 3_600_000)
    deps.analytics = AnalyticsPorts(rollups, sketches)
    await deps.contents.insert(Content("c1", "alice", ContentKind.VIDEO, NOW, 60_000))
    return rollups, sketches


def worker_of(deps, stores, applied=None, consumer=None) -> AnalyticsWorker:
    rollups, sketches = stores
    return AnalyticsWorker(
        consumer or FakeConsumer(), deps.contents, rollups, sketches, applied or sketches
    )


async def day(runtime, scope: str = "c:c1") -> dict[str, Any]:
    start = ms_of(NOW.replace(hour=0, minute=0))
    doc = await runtime.db[COLLECTIONS[Granularity.DAY]].find_one({"_id": bucket_id(scope, start)})
    return doc or {}


async def test_a_crash_between_the_write_and_the_applied_set_is_harmless(runtime, deps, stores):
    batch = [
        delivery("1-0", [like("u1", NOW_MS), counted("d:a", NOW_MS)]),
        delivery("2-0", [watched(i, NOW_MS + i) for i in range(5)]),
    ]
    crashing = CrashOnce(stores[1])
    consumer = FakeConsumer()
    with pytest.raises(ConnectionError):
        await worker_of(deps, stores, crashing, consumer).process(batch)
    assert consumer.acked == []  # not acknowledged: the log hands it over again
    assert (await day(runtime))["views"] == 1  # but written
    # Redelivered (to this worker or another), with something new in the mix.
    again = [*batch, delivery("3-0", [counted("d:b", NOW_MS)])]
    assert await worker_of(deps, stores, crashing, consumer).process(again) == 8
    for scope in ("c:c1", "u:alice"):
        doc = await day(runtime, scope)
        assert (doc["views"], doc["likes_added"], doc["watch_ms"]) == (2, 1, 5000)
    assert consumer.acked == again
    # Now remembered: one more redelivery is dropped before it is folded.
    assert await worker_of(deps, stores).process(again) == 0
    assert (await day(runtime))["views"] == 2


async def test_a_redelivery_ordered_otherwise_is_still_applied_once(runtime, deps, stores):
    # One entry's raw views of two contents: first read alone (each content's events
    # within a minute: ordered by content), then redelivered beside a spread of
    # events over hours (log order). Each content's raw views keep their token.
    await deps.contents.insert(Content("c2", "alice", ContentKind.VIDEO, NOW, 60_000))
    raws = [watched(i, NOW_MS + i) for i in range(4)]
    raws = [
        r if i % 2 else EngagementEvent(**{**r.to_dict(), "content_id": "c2"})
        for i, r in enumerate(raws)
    ]
    batch = [delivery("1-0", raws)]
    crashing = CrashOnce(stores[1])
    with pytest.raises(ConnectionError):
        await worker_of(deps, stores, crashing).process(batch)
    spread = [counted(f"d:{h}", NOW_MS + h * 3_600_000) for h in range(1, 40)]
    again = [*batch, delivery("2-0", spread)]
    assert await worker_of(deps, stores, crashing).process(again) == 4 + 39
    for scope in ("c:c1", "c:c2"):
        assert (await day(runtime, scope))["watch_ms"] == 2000
    assert (await day(runtime, "u:alice"))["watch_ms"] == 4000


async def test_an_entry_half_applied_before_the_split_by_content_stays_once(runtime, deps, stores):
    # A worker before raw views were split by content guarded a bucket with the entry's
    # token alone. It crashed after writing the day buckets: the redelivery, under
    # tokens per content, must still find them there.
    await deps.contents.insert(Content("c2", "alice", ContentKind.VIDEO, NOW, 60_000))
    raws = [watched(0, NOW_MS), watched(1, NOW_MS)]
    raws[1] = EngagementEvent(**{**raws[1].to_dict(), "content_id": "c2"})
    start = ms_of(NOW.replace(hour=0, minute=0))
    written = {"c:c1": 1000, "c:c2": 1000, "u:alice": 2000}
    for scope, watch in written.items():
        await runtime.db[COLLECTIONS[Granularity.DAY]].insert_one(
            {
                "_id": bucket_id(scope, start),
                "scope": scope,
                "watch_ms": watch,
                "seen": ["log:1:1-0"],
            }
        )
    assert await worker_of(deps, stores).process([delivery("1-0", raws)]) == 2
    for scope, watch in written.items():
        assert (await day(runtime, scope))["watch_ms"] == watch
    # The buckets it had not reached yet are written once, under the new tokens.
    hour = await runtime.db[COLLECTIONS[Granularity.HOUR]].find_one(
        {"_id": bucket_id("u:alice", ms_of(NOW.replace(minute=0)))}
    )
    assert hour is not None and hour["watch_ms"] == 2000
    assert sorted(hour["seen"]) == ["log:1:1-0:c1", "log:1:1-0:c2"]


async def test_a_replay_after_the_applied_set_was_lost(runtime, deps, stores, app_redis):
    worker = worker_of(deps, stores)
    await worker.process([delivery("1-0", [like("u1", NOW_MS), counted("d:a", NOW_MS)])])
    await app_redis.delete(*[Keys().analytics_applied(p) for p in range(4)])
    # The outbox relay republishes both in a new entry, next to a new event: the
    # buckets saw two of the three ids and are redone event by event.
    replay = delivery("9-0", [like("u1", NOW_MS), counted("d:a", NOW_MS), like("u2", NOW_MS)])
    assert await worker.process([replay]) == 3
    doc = await day(runtime)
    assert (doc["views"], doc["likes_added"], doc["reactions"]["LIKE"]) == (1, 2, 2)


async def test_the_guard_remembers_the_last_n_tokens_only(runtime):
    # The documented bound, shown with a guard of 3: a write comes again after
    # 2 other tokens (dropped) and after 3 others (applied again).
    store = MongoAnalytics(runtime.db, guard_size=3)
    creators = {"c1": "alice"}

    async def apply(*events: EngagementEvent) -> int:
        return await store.apply(fold(events, creators))

    first = counted("d:first", NOW_MS)
    await apply(first)
    await apply(counted("d:2", NOW_MS), counted("d:3", NOW_MS))
    await apply(first)
    assert (await day(runtime))["views"] == 3
    await apply(counted("d:4", NOW_MS))
    await apply(first)
    assert (await day(runtime))["views"] == 5  # forgotten: counted twice
    assert (await day(runtime))["seen"] == ["v-d:3", "v-d:4", "v-d:first"]


async def test_through_the_event_log(runtime, deps, stores, app_redis):
    keys = runtime.services.keys
    log = RedisEventLog(app_redis, keys)
    await log.append([like("u1", NOW_MS), counted("d:a", NOW_MS)])
    await log.append([watched(i, NOW_MS) for i in range(3)])
    consumer = RedisEventConsumer(app_redis, keys, Keys.ANALYTICS_GROUP, "t1")
    worker = worker_of(deps, stores, consumer=consumer)
    assert await worker.run_once() == 5
    assert await worker.run_once() == 0
    for stream in keys.streams():
        if await app_redis.exists(stream):
            assert (await app_redis.xpending(stream, Keys.ANALYTICS_GROUP))["pending"] == 0
    doc = await day(runtime)
    assert (doc["views"], doc["likes_added"], doc["watch_ms"]) == (1, 1, 3000)


async def test_from_the_use_cases(runtime, deps, stores, app_redis):
    """The view and like paths emit what analytics reads (the contract)."""
    clock = deps.clock = FakeClock(NOW + timedelta(minutes=10))
    await register_content(deps, SERVICE, "v1", "bob", ContentKind.VIDEO, 120_000)
    clock.at += timedelta(seconds=5)
    await set_reaction(deps, Actor("u1"), "v1", R.LOVE, region="BR")
    await set_reaction(deps, Actor("u1"), "v1", R.LIKE, region="BR")
    viewer = Actor("u2")
    base = {"content_id": "v1", "session_id": "s1", "platform": "IOS", "source": "FEED"}
    for seconds, watch, position, final in [
        (0, 20_000, 20_000, False),
        (21, 15_000, 35_000, False),
        (1, 0, 35_000, True),
    ]:
        clock.at += timedelta(seconds=seconds)
        event = {**base, "watched_ms": watch, "position_ms": position, "final": final}
        await record_views(deps, viewer, [event], "PT")
    consumer = RedisEventConsumer(app_redis, runtime.services.keys, Keys.ANALYTICS_GROUP, "t")
    await worker_of(deps, stores, consumer=consumer).run_once()
    r = await content_analytics(
        deps,
        deps.analytics,
        Actor("bob"),
        "v1",
        TimeRange(NOW, NOW + timedelta(hours=1)),
        Granularity.MINUTE,
    )
    assert (r.totals.views, r.totals.unique_viewers, r.totals.likes_added) == (1, 1, 1)
    assert r.totals.watch_time_ms == 35_000
    assert r.totals.engagement_rate == 1.0
    assert [(c.reaction, c.net) for c in r.reactions] == [(R.LIKE, 1)]
    assert [(b.key, b.views, b.watch_time_ms) for b in r.by_platform] == [
        ("IOS", 1, 35_000),
        ("unknown", 0, 0),
    ]
    assert [(b.key, b.views, b.likes_added) for b in r.by_region] == [("PT", 1, 0), ("BR", 0, 1)]
    # 35 s of 120 s: 0.291666, in [0.2, 0.3).
    assert r.completion == Completion(1, 0.291666, (0, 0, 1, 0, 0, 0, 0, 0, 0, 0))
    assert r.time_to_first_like_ms == 5_000


class QueueConsumer(FakeConsumer):
    """New deliveries once, then one orphaned delivery to claim; stops the loop."""

    def __init__(self, new: list[Delivery], stale: list[Delivery], stop: Any) -> None:
        super().__init__()
        self.new, self.stale, self.stop = new, stale, stop

    async def read(self, count: int, block_ms: int | None, *, pending: bool = False) -> list:
        if pending or not self.new:
            return []
        out, self.new = self.new, []
        return out

    async def claim_stale(self, min_idle_ms: int, count: int) -> list:
        out, self.stale = self.stale, []
        self.stop.set()
        return out


async def test_run_drains_then_claims_orphans_until_stopped(runtime, deps, stores):
    import asyncio

    stop = asyncio.Event()
    fresh = delivery("1-0", [counted("d:a", NOW_MS)])
    orphan = delivery("0-5", [counted("d:b", NOW_MS), like("u1", NOW_MS)])
    consumer = QueueConsumer([fresh], [orphan], stop)
    rollups, sketches = stores
    worker = AnalyticsWorker(consumer, deps.contents, rollups, sketches, sketches, claim_idle_ms=0)
    await worker.run(stop)
    assert consumer.acked == [fresh, orphan]
    assert ((await day(runtime))["views"], (await day(runtime))["likes_added"]) == (2, 1)


async def test_a_bucket_created_by_another_writer_at_the_same_moment(runtime):
    store, other = MongoAnalytics(runtime.db), MongoAnalytics(runtime.db)
    creators = {"c1": "alice"}
    day_col = store._cols[Granularity.DAY]

    class Racing:
        """The other writer creates the day bucket between our read and our write."""

        def __init__(self) -> None:
            self.raced = False

        async def bulk_write(self, ops: Any, ordered: bool) -> Any:
            if not self.raced:
                self.raced = True
                await other.apply(fold([counted("d:other", NOW_MS)], creators))
            return await day_col.bulk_write(ops, ordered=ordered)

    store._cols[Granularity.DAY] = Racing()
    # Our insert fails with a duplicate key though the bucket never saw our token.
    await store.apply(fold([counted("d:a", NOW_MS)], creators))
    assert (await day(runtime))["views"] == 2
    await store.apply(fold([counted("d:a", NOW_MS), counted("d:b", NOW_MS)], creators))
    doc = await day(runtime)
    assert doc["views"] == 3
    assert sorted(doc["seen"]) == ["v-d:a", "v-d:b", "v-d:other"]


async def test_indexes(mongo_db):
    from storage.mongo_analytics import analytics_indexes, ensure_analytics_indexes

    await ensure_analytics_indexes(mongo_db, ttl=False)
    info = await mongo_db["analytics_hour"].index_information()
    assert list(info["creator_start"]["key"]) == [("creator", 1), ("start", 1)]
    assert "start_ttl" not in info
    ttl = {
        name: [i.document.get("expireAfterSeconds") for i in indexes]
        for name, indexes in analytics_indexes(ttl=True).items()
    }
    assert ttl == {
        "analytics_minute": [None, 48 * 3600],
        "analytics_hour": [None, 400 * 86400],
        "analytics_day": [None],
    }
