"""Counter snapshots against a real Redis: snapshot -> FLUSHALL -> restore is exact,
with events before the watermark, between it and the snapshot, after the snapshot
(applied or not, archived or still in an outbox); the reconciler still finds drift."""

from __future__ import annotations

from dataclasses import replace

import pytest

from domain import reads
from domain.catalog import register_content
from domain.contents import ContentKind
from domain.counter_snapshots import Outcome, take_snapshot
from domain.counters import drift
from domain.identity import Actor
from domain.likes import set_reaction
from domain.reactions import ReactionType as R
from domain.reconcile import reconcile
from domain.view_recording import record_views
from storage.mongo_counter_snapshots import COLLECTION
from storage.redis_counter_snapshots import RedisCounterSnapshots
from tests.integration.conftest import SERVICE
from workers.snapshotter import Snapshotter

MARGIN_MS = 30_000


class NoSleep:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, _seconds: float) -> None:
        self.count += 1


async def view(deps, who: str, session: str, cid: str = "v1") -> None:
    (r,) = await record_views(
        deps, Actor(who), [{"content_id": cid, "session_id": session, "watched_ms": 31_000}]
    )
    assert r.decision.counted


async def redis_state(deps, cid: str = "v1"):
    reading = (await deps.counters.read([cid]))[cid]
    assert reading is not None
    return reading


async def exact(deps, cid: str = "v1") -> dict[str, int]:
    return (await reads.recount(deps, [cid]))[cid].counters


def snapshotter(deps) -> Snapshotter:
    assert deps.snapshots is not None
    return Snapshotter(deps.snapshots, deps.clock, margin_ms=MARGIN_MS, sleep=NoSleep())


@pytest.fixture
def recounts(mongo_db):
    """How many recount queries of reactions have run."""
    return lambda: mongo_db.counts["reactions.aggregate"]


async def test_restore_after_flushall_is_exact(deps, clock, workers, video, app_redis, recounts):
    # Before the watermark: likes, an unlike, a change of reaction, views.
    for i in range(6):
        await set_reaction(deps, Actor(f"u{i}"), video, R.LIKE)
    await set_reaction(deps, Actor("u0"), video, None)
    await set_reaction(deps, Actor("u1"), video, R.WOW)
    for i in range(5):
        await view(deps, f"w{i}", f"s{i}")
    await workers["aggregator"].run_once()
    await workers["archiver"].run_once()
    # Between the watermark (now - margin) and the snapshot: applied, so in the
    # capture, and taken back out of the snapshot.
    clock.advance(seconds=40)
    await set_reaction(deps, Actor("u2"), video, None)
    await set_reaction(deps, Actor("u7"), video, R.SAD)
    await view(deps, "w9", "s9")
    await workers["aggregator"].run_once()
    clock.advance(seconds=20)
    report = await snapshotter(deps).run_once()
    assert report.outcomes == {Outcome.TAKEN: 1}
    # After the snapshot: some applied and archived, some applied and only in their
    # outbox, some not applied at all (the flush takes the log with it).
    clock.advance(seconds=5)
    await set_reaction(deps, Actor("u8"), video, R.LIKE)
    await view(deps, "w10", "s10")
    await workers["aggregator"].run_once()
    await workers["archiver"].run_once()
    await set_reaction(deps, Actor("u3"), video, R.LOVE)
    await view(deps, "w11", "s11")
    await workers["aggregator"].run_once()
    await set_reaction(deps, Actor("u9"), video, R.LIKE)
    await view(deps, "w12", "s12")
    before = await redis_state(deps)
    truth = await exact(deps)
    # Redis lacks the two it did not apply.
    assert drift(before.counters, truth) == {
        "likes": (truth["likes"] - 1, truth["likes"]),
        "r:LIKE": (truth["r:LIKE"] - 1, truth["r:LIKE"]),
        "views": (truth["views"] - 1, truth["views"]),
    }

    await app_redis.flushall()
    calls = recounts()
    (s,) = await reads.summaries(deps, None, [video])
    assert recounts() == calls, "restored from the snapshot, not recounted"
    after = await redis_state(deps)
    assert drift(after.counters, truth) == {}
    assert (s.likes, s.views) == (truth["likes"], truth["views"])
    # The unapplied ones were read from MongoDB: one more viewer than Redis had.
    assert s.unique_viewers == before.unique_viewers + 1 == 9


async def test_events_not_yet_applied_pull_the_watermark_back(
    deps, clock, workers, video, app_redis, recounts
):
    for i in range(3):
        await set_reaction(deps, Actor(f"u{i}"), video, R.LIKE)
    await workers["aggregator"].run_once()
    clock.advance(seconds=10)
    # In MongoDB before the watermark, but the aggregator has not applied it yet.
    await set_reaction(deps, Actor("late"), video, R.LIKE)
    late_ms = int(clock.now().timestamp() * 1000)
    clock.advance(seconds=35)
    assert await take_snapshot(deps.snapshots, clock, video, margin_ms=MARGIN_MS) is Outcome.TAKEN
    (snap,) = (await deps.snapshots.store.get_many([video])).values()
    assert snap.watermark_ms == late_ms - 1
    assert snap.counters["likes"] == 3
    await workers["aggregator"].run_once()
    await app_redis.flushall()
    calls = recounts()
    (s,) = await reads.summaries(deps, None, [video])
    assert recounts() == calls and s.likes == 4


async def test_a_lapsed_capture_is_retried_next_pass(
    deps, runtime, clock, workers, video, app_redis
):
    await set_reaction(deps, Actor("u0"), video, R.LIKE)
    await workers["aggregator"].run_once()
    clock.advance(seconds=60)
    # A window that has closed by the time MongoDB has been read.
    ports = replace(
        deps.snapshots, capture=RedisCounterSnapshots(app_redis, runtime.services.keys, window_ms=0)
    )
    first = await Snapshotter(ports, clock, sleep=NoSleep()).run_once()
    assert first.outcomes == {Outcome.LAPSED: 1} and first.retried == [video]
    second = await snapshotter(deps).run_once()
    assert second.outcomes == {Outcome.TAKEN: 1}
    # Nothing changed since: the next pass has nothing to take.
    assert (await snapshotter(deps).run_once()).outcomes == {}


async def test_a_capture_overtaken_by_a_recount_is_given_up(deps, clock, workers, video):
    await set_reaction(deps, Actor("u0"), video, R.LIKE)
    await workers["aggregator"].run_once()
    ports = deps.snapshots
    captured = await ports.capture.capture(video)
    assert captured is not None and captured.counters["likes"] == 1
    await reads.rebuild(deps, [video], replace=True)
    assert await ports.capture.finish(video, captured.token, []) is None


async def test_events_applied_after_the_capture_are_told_apart(
    deps, runtime, clock, workers, video, app_redis
):
    await set_reaction(deps, Actor("u0"), video, R.LIKE)
    await workers["aggregator"].run_once()
    ports = deps.snapshots
    first = (await ports.events.after(video, 0))[0].event_id
    captured = await ports.capture.capture(video)
    await set_reaction(deps, Actor("u1"), video, R.LIKE)
    await workers["aggregator"].run_once()
    ids = [e.event_id for e in await ports.events.after(video, 0)]
    assert len(ids) == 2
    assert await ports.capture.finish(video, captured.token, ids) == {first}
    # The capture's notes are gone with it.
    fields = await app_redis.hkeys(runtime.services.keys.counters(video))
    assert not [f for f in fields if f.startswith("_s") or f.startswith("_snap")]


async def test_without_a_snapshot_a_miss_recounts(deps, clock, workers, video, app_redis, recounts):
    await set_reaction(deps, Actor("u0"), video, R.LIKE)
    await workers["aggregator"].run_once()
    await app_redis.flushall()
    calls = recounts()
    (s,) = await reads.summaries(deps, None, [video])
    assert s.likes == 1 and recounts() == calls + 1


async def test_a_snapshot_past_the_horizon_is_not_used(
    deps, clock, workers, video, app_redis, recounts
):
    await set_reaction(deps, Actor("u0"), video, R.LIKE)
    await workers["aggregator"].run_once()
    clock.advance(seconds=60)
    assert (await snapshotter(deps).run_once()).taken == 1
    deps.snapshots.horizon_ms = 10_000
    await app_redis.flushall()
    calls = recounts()
    (s,) = await reads.summaries(deps, None, [video])
    assert s.likes == 1 and recounts() == calls + 1


async def test_the_reconciler_still_finds_drift_after_a_restore(
    deps, clock, workers, video, app_redis, mongo_db
):
    for i in range(4):
        await set_reaction(deps, Actor(f"u{i}"), video, R.LIKE)
    await workers["aggregator"].run_once()
    clock.advance(seconds=60)
    assert (await snapshotter(deps).run_once()).taken == 1
    # A snapshot that went wrong: the restore trusts it, the recount does not.
    await mongo_db[COLLECTION].update_one({"_id": video}, {"$inc": {"counters.likes": 3}})
    await app_redis.flushall()
    (s,) = await reads.summaries(deps, None, [video])
    assert s.likes == 7
    repairs, _ = await reconcile(deps, [video], settle_ms=0)
    assert [r.fields for r in repairs] == [{"likes": (7, 4)}]
    (s,) = await reads.summaries(deps, None, [video])
    assert s.likes == 4


class ApplyingWhileRead:
    """Durable events whose read lets the aggregator apply more events first: the
    window between the capture and the question which events it included."""

    def __init__(self, inner, during) -> None:
        self.inner = inner
        self.during = during

    async def after(self, content_id, after_ms):
        if self.during is not None:
            during, self.during = self.during, None
            await during()
        return await self.inner.after(content_id, after_ms)


async def test_events_applied_during_a_snapshot_are_not_taken_as_included(
    deps, clock, workers, video, app_redis, recounts
):
    for i in range(3):
        await set_reaction(deps, Actor(f"u{i}"), video, R.LIKE)
    await workers["aggregator"].run_once()
    clock.advance(seconds=40)

    async def more() -> None:
        await set_reaction(deps, Actor("u0"), video, None)
        await set_reaction(deps, Actor("u5"), video, R.WOW)
        await view(deps, "w1", "s1")
        await workers["aggregator"].run_once()

    ports = replace(deps.snapshots, events=ApplyingWhileRead(deps.snapshots.events, more))
    assert await take_snapshot(ports, clock, video, margin_ms=MARGIN_MS) is Outcome.TAKEN
    truth = await exact(deps)
    await app_redis.flushall()
    calls = recounts()
    (s,) = await reads.summaries(deps, None, [video])
    assert recounts() == calls
    assert drift((await redis_state(deps)).counters, truth) == {}
    assert (s.likes, s.views, s.unique_viewers) == (3, 1, 1)


async def test_a_pass_goes_in_bounded_pages_with_a_yield_between(deps, clock, workers):
    ids = [f"c{i}" for i in range(5)]
    for cid in ids:
        await register_content(deps, SERVICE, cid, "creator", ContentKind.POST, None)
        await set_reaction(deps, Actor("u0"), cid, R.LIKE)
    await workers["aggregator"].run_once()
    clock.advance(seconds=60)
    sleeps = NoSleep()
    worker = Snapshotter(deps.snapshots, clock, batch=2, sleep=sleeps)
    report = await worker.run_once()
    assert report.taken == 5 and report.pages == sleeps.count >= 2
    stored = await deps.snapshots.store.get_many(ids)
    assert {cid: s.counters["likes"] for cid, s in stored.items()} == dict.fromkeys(ids, 1)
