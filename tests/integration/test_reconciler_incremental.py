"""The reconciler goes in bounded pages, touched contents first, and resumes its sweep;
retention in the embedded mode removes old documents without changing any count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import reads
from domain.catalog import register_content
from domain.contents import ContentKind
from domain.identity import Actor
from domain.likes import set_reaction
from domain.reactions import ReactionType as R
from domain.view_recording import record_views
from storage.mongo_retention import MongoRetention
from storage.redis_reconcile_queue import RedisReconcileQueue
from tests.integration.conftest import SERVICE
from workers import reconciler as reconciler_module
from workers.reconciler import Reconciler
from workers.retention import Retention

IDS = [f"c{i:02d}" for i in range(23)]


class Sleeps:
    """Stands in for asyncio.sleep: counts the reconciler's yields between pages."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, _seconds: float) -> None:
        self.count += 1


@pytest.fixture
async def many(deps):
    for cid in IDS:
        await register_content(deps, SERVICE, cid, "creator", ContentKind.VIDEO, 600_000)
    return IDS


@pytest.fixture
def pages(monkeypatch):
    """The ids of every page the reconciler recounts, in order."""
    seen: list[list[str]] = []
    original = reconciler_module.reconcile

    async def recording(deps, ids, **kw):
        seen.append(list(ids))
        return await original(deps, ids, **kw)

    monkeypatch.setattr(reconciler_module, "reconcile", recording)
    return seen


def make(runtime, app_redis, sleeps, **kw):
    queue = RedisReconcileQueue(app_redis, runtime.services.keys)
    return Reconciler(runtime.deps, queue, sleep=sleeps, **{"settle_ms": 0, **kw})


async def test_a_pass_goes_in_bounded_pages_with_a_yield_between(runtime, app_redis, many, pages):
    sleeps = Sleeps()
    report = await make(runtime, app_redis, sleeps, batch=5).run_once()
    assert report.checked == len(IDS) and report.swept_all
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert sleeps.count == report.pages == 5


async def test_touched_contents_are_checked_first(runtime, deps, workers, app_redis, many, pages):
    for cid in ("c17", "c03"):
        await set_reaction(deps, Actor("alice"), cid, R.LIKE)
    await workers["aggregator"].run_once()
    report = await make(runtime, app_redis, Sleeps(), batch=5).run_once()
    assert sorted(pages[0]) == ["c03", "c17"] and report.touched == 2
    # Not recounted twice in the same pass.
    assert report.checked == len(IDS)
    assert sorted(cid for page in pages for cid in page) == IDS
    # Taken: the next pass has nothing touched.
    pages.clear()
    assert (await make(runtime, app_redis, Sleeps(), batch=5).run_once()).touched == 0


async def test_unsettled_touches_wait_for_a_later_pass(runtime, deps, workers, app_redis, many):
    await set_reaction(deps, Actor("alice"), "c05", R.LIKE)
    await workers["aggregator"].run_once()
    sleeps = Sleeps()
    report = await make(runtime, app_redis, sleeps, settle_ms=60_000, sweep_per_pass=0).run_once()
    assert report.touched == 0
    report = await make(runtime, app_redis, sleeps, sweep_per_pass=0).run_once()
    assert report.touched == 1


async def test_the_sweep_resumes_where_it_left_off(runtime, app_redis, many, pages):
    def one_pass():
        return make(runtime, app_redis, Sleeps(), batch=4, sweep_per_pass=10).run_once()

    first = await one_pass()
    assert (first.checked, first.swept_all) == (10, False)
    second = await one_pass()
    third = await one_pass()
    assert (second.checked, third.checked, third.swept_all) == (10, 3, True)
    assert [cid for page in pages for cid in page] == IDS
    pages.clear()
    await one_pass()  # starts over
    assert pages[0] == IDS[:4]


async def test_incremental_passes_end_equal_to_a_full_recount(
    runtime, deps, workers, app_redis, many
):
    for i, cid in enumerate(IDS):
        for u in range(i % 4):
            await set_reaction(deps, Actor(f"u{u}"), cid, R.LIKE if u % 2 else R.WOW)
        for v in range(i % 3):
            view = {"content_id": cid, "session_id": f"{cid}-s{v}", "watched_ms": 31_000}
            await record_views(deps, Actor(f"viewer-{v}"), [view])
    await workers["aggregator"].run_once()
    keys = runtime.services.keys
    # Drift of every kind: wrong numbers, a lost hash, lost unique viewers.
    await app_redis.hset(keys.counters("c01"), mapping={"likes": 40, "_last": 0})
    await app_redis.hset(keys.counters("c07"), mapping={"views": 9, "r:WOW": 3, "_last": 0})
    await app_redis.delete(keys.counters("c10"), keys.uniques("c10"))
    await app_redis.delete(keys.uniques("c14"))
    rec = make(runtime, app_redis, Sleeps(), batch=3, sweep_per_pass=7)
    repaired = []
    while not (report := await rec.run_once()).swept_all:
        repaired += [r.content_id for r in report.repairs]
    repaired += [r.content_id for r in report.repairs]
    assert sorted(repaired) == ["c01", "c07", "c10", "c14"]
    truth = await reads.recount(deps, IDS)
    stored = await deps.counters.read(IDS)
    for cid in IDS:
        reading = stored[cid]
        assert reading is not None
        assert reading.counters == truth[cid].counters, cid
        assert reading.unique_viewers == len(truth[cid].unique_members), cid


class Later:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


async def test_retention_folds_sessions_without_changing_any_count(
    runtime, deps, workers, app_redis, mongo_db, many
):
    for i in range(12):
        # Some count (31 s), some never do (2 s); one viewer twice on c00.
        await record_views(
            deps,
            Actor(f"viewer-{i % 5}"),
            [
                {
                    "content_id": IDS[i % 3],
                    "session_id": f"s{i}",
                    "watched_ms": 31_000 if i % 2 else 2_000,
                    "final": True,
                }
            ],
        )
    await workers["aggregator"].run_once()
    await workers["archiver"].run_once()
    # As the outbox relay does once the events are archived and its grace is over.
    await mongo_db["view_sessions"].update_many({}, {"$set": {"outbox": []}})
    before = await reads.recount(deps, IDS[:3])
    assert await mongo_db["view_sessions"].count_documents({}) == 12
    sleeps = Sleeps()
    retention = Retention(
        MongoRetention(mongo_db),
        Later(datetime.now(UTC) + timedelta(hours=1)),
        keep=timedelta(minutes=5),
        batch=5,
        sleep=sleeps,
    )
    report = await retention.run_once()
    assert report.removed["view_sessions"] == 12 and report.removed["view_events"] >= 1
    assert await mongo_db["view_sessions"].count_documents({}) == 0
    assert await mongo_db["view_events"].count_documents({}) == 0
    # 12 sessions in pages of 5: 3 pages and an empty one, each followed by a yield.
    assert sleeps.count == report.pages
    assert await reads.recount(deps, IDS[:3]) == before
    report = await make(runtime, app_redis, Sleeps()).run_once()
    assert report.repairs == []


async def test_retention_keeps_recent_documents_and_pending_outboxes(
    runtime, deps, workers, mongo_db, many
):
    await record_views(
        deps, Actor("v"), [{"content_id": "c00", "session_id": "s1", "watched_ms": 31_000}]
    )
    store = MongoRetention(mongo_db)
    now = datetime.now(UTC)
    assert await store.fold_sessions(now - timedelta(minutes=5), 10) == 0
    # Old enough, but its counted event is still in the outbox: the relay may need it.
    assert await store.fold_sessions(now + timedelta(hours=1), 10) == 0
    assert await mongo_db["view_sessions"].count_documents({}) == 1


async def test_retention_leaves_open_sessions_to_the_session_closer(
    runtime, deps, workers, mongo_db, many
):
    await record_views(
        deps, Actor("v"), [{"content_id": "c00", "session_id": "s1", "watched_ms": 1_000}]
    )
    await mongo_db["view_sessions"].update_many({}, {"$set": {"outbox": []}})
    store = MongoRetention(mongo_db)
    later = datetime.now(UTC) + timedelta(hours=1)
    # Idle, not ended: the closer still owes analytics its end event.
    assert await store.fold_sessions(later, 10) == 0
    await mongo_db["view_sessions"].update_many({}, {"$set": {"ended": True}})
    assert await store.fold_sessions(later, 10) == 1


async def test_retention_expires_analytics_buckets_as_ttl_indexes_would(mongo_db):
    now = datetime.now(UTC)
    ages = {"fresh": timedelta(hours=1), "old": timedelta(days=3), "ancient": timedelta(days=401)}
    for col in ("analytics_minute", "analytics_hour", "analytics_day"):
        await mongo_db[col].insert_many(
            [{"_id": name, "start": now - age} for name, age in ages.items()]
        )
    removed = await MongoRetention(mongo_db).expire_analytics(now, 100)
    assert removed == 2 + 1  # minutes past 48 h; hours past 400 days; days kept

    async def left(col: str) -> set[str]:
        return {d["_id"] async for d in mongo_db[col].find({}, {"_id": 1})}

    assert await left("analytics_minute") == {"fresh"}
    assert await left("analytics_hour") == {"fresh", "old"}
    assert await left("analytics_day") == {"fresh", "old", "ancient"}


def test_retention_runs_only_with_the_in_process_store(workers):
    # The fixture's settings have no MONGODB_URL: the embedded mode.
    assert isinstance(workers["retention"], Retention)


def test_ttl_indexes_never_expire_counted_sessions():
    from storage.mongo import ttl_indexes

    (sessions,) = ttl_indexes(3600)["view_sessions"]
    assert sessions.document["partialFilterExpression"] == {"counted": False}
    assert all(
        m.document["expireAfterSeconds"] == 3600 for ms in ttl_indexes(3600).values() for m in ms
    )


def test_reconciler_keys_carry_the_partition_tag_where_the_aggregator_writes():
    from storage.keys import Keys

    keys = Keys("lv", 4)
    assert keys.touched(3) == "lv:{p3}:touched"  # one slot with the partition's counters
    assert keys.reconcile_sweep() == "lv:reconcile:sweep"


async def test_retention_expires_finished_webhook_deliveries_only(mongo_db):
    """The embedded store has no TTL index: finished deliveries older than the window
    go; one still being retried stays, whatever its age."""
    now = datetime.now(UTC)
    old = now - timedelta(hours=1)
    deliveries = mongo_db["webhook_deliveries"]
    await deliveries.insert_many(
        [
            {"_id": "n1:e", "status": "delivered", "created_at": old},
            {"_id": "n2:e", "status": "abandoned", "created_at": old},
            {"_id": "n3:e", "status": "pending", "created_at": old},
            {"_id": "n4:e", "status": "delivered", "created_at": now},
        ]
    )
    store = MongoRetention(mongo_db)
    assert await store.expire_webhook_deliveries(now - timedelta(minutes=5), 10) == 2
    assert sorted([d["_id"] async for d in deliveries.find({})]) == ["n3:e", "n4:e"]
