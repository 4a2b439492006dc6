"""Views end to end below the API: policy decisions, sessions, dedupe, counters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from domain import reads
from domain.catalog import register_content
from domain.contents import ContentKind
from domain.errors import BadUserInput, ContentNotFound, Unauthenticated
from domain.identity import Actor
from domain.reconcile import reconcile
from domain.view_recording import record_views, view_session
from tests.integration.conftest import SERVICE, RoundTrips

ALICE = Actor("alice")


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


@pytest.fixture
def clock(deps):
    deps.clock = FakeClock()
    return deps.clock


@pytest.fixture
async def video(deps, clock):
    await register_content(deps, SERVICE, "v1", "creator", ContentKind.VIDEO, 600_000)
    await register_content(deps, SERVICE, "p1", "creator", ContentKind.POST, None)
    return "v1"


def ev(session="s1", content="v1", **kw):
    return {"content_id": content, "session_id": session, **kw}


async def summary(deps, cid="v1"):
    (s,) = await reads.summaries(deps, None, [cid])
    return s


async def test_video_counts_once_watch_passes_30s(deps, clock, workers, video):
    (r,) = await record_views(deps, ALICE, [ev(watched_ms=20_000)])
    assert (r.decision.counted, r.decision.rule) == (False, "VIDEO.default")
    assert r.decision.reason == "watched 20.0 s < 30 s"
    clock.advance(seconds=12)
    (r,) = await record_views(deps, ALICE, [ev(watched_ms=11_200)])
    assert r.decision.counted and r.decision.reason == "watched 31.2 s >= 30 s"
    clock.advance(seconds=10)
    (r,) = await record_views(deps, ALICE, [ev(watched_ms=10_000)])
    assert r.decision.counted  # already counted: still true, not counted again
    await workers["aggregator"].run_once()
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (1, 1)
    found = await view_session(deps, ALICE, "s1")
    assert found.watched_ms == 41_200 and found.counted and found.events == 3


async def test_dedupe_window_per_viewer_with_controllable_clock(deps, clock, workers, video):
    (a,) = await record_views(deps, ALICE, [ev("s1", watched_ms=31_000)])
    clock.advance(hours=1)
    (b,) = await record_views(deps, ALICE, [ev("s2", watched_ms=31_000)])
    assert a.decision.counted and not b.decision.counted
    assert b.decision.reason == "duplicate: already counted for this viewer within 24 h"
    clock.advance(hours=24)
    (c,) = await record_views(deps, ALICE, [ev("s3", watched_ms=31_000)])
    assert c.decision.counted
    await workers["aggregator"].run_once()
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (2, 1)


async def test_anonymous_needs_device_and_is_deduped_by_it(deps, clock, workers, video):
    with pytest.raises(BadUserInput, match="deviceId is required"):
        await record_views(deps, None, [ev(watched_ms=31_000)])
    (a,) = await record_views(deps, None, [ev("s1", device_id="ph1", watched_ms=31_000)])
    (b,) = await record_views(deps, None, [ev("s2", device_id="ph1", watched_ms=31_000)])
    (c,) = await record_views(deps, None, [ev("s3", device_id="ph2", watched_ms=31_000)])
    assert [a.decision.counted, b.decision.counted, c.decision.counted] == [True, False, True]
    await workers["aggregator"].run_once()
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (2, 2)


async def test_repeated_event_id_and_events_after_final_are_ignored(deps, clock, video):
    results = await record_views(
        deps,
        ALICE,
        [
            ev(event_id="e1", watched_ms=10_000),
            ev(event_id="e1", watched_ms=10_000),
            ev(event_id="e2", watched_ms=0, final=True),
            ev(event_id="e3", watched_ms=50_000),
        ],
    )
    reasons = [r.decision.reason for r in results]
    assert reasons[1] == "repeated event 'e1': ignored"
    assert reasons[3] == "session ended: event ignored"
    assert not any(r.decision.counted for r in results)
    found = await view_session(deps, ALICE, "s1")
    assert found.watched_ms == 10_000 and found.ended


async def test_impossible_watch_time_is_kept_flagged_and_not_counted(deps, clock, video):
    await record_views(deps, ALICE, [ev(watched_ms=1_000)])
    clock.advance(seconds=2)
    (r,) = await record_views(deps, ALICE, [ev(watched_ms=60_000)])
    assert not r.decision.counted
    assert "wall" in r.decision.reason or "longer" in r.decision.reason, r.decision.reason
    found = await view_session(deps, ALICE, "s1")
    assert found.flags and not found.counted


async def test_visible_fraction_out_of_range_is_bad_input_and_writes_nothing(
    deps, runtime, clock, video
):
    with pytest.raises(BadUserInput, match=r"inputs\[1\]: visibleFraction"):
        await record_views(
            deps,
            ALICE,
            [
                ev("ok", content="p1", watched_ms=2_000, visible_fraction=0.9),
                ev("bad", content="p1", watched_ms=2_000, visible_fraction=1.5),
            ],
        )
    assert await runtime.db["view_sessions"].count_documents({}) == 0


async def test_post_needs_visibility(deps, clock, video):
    (low,) = await record_views(
        deps, ALICE, [ev("a", content="p1", watched_ms=2_000, visible_fraction=0.3)]
    )
    assert not low.decision.counted and "0.30 < 0.50" in low.decision.reason
    (high,) = await record_views(
        deps, Actor("bob"), [ev("b", content="p1", watched_ms=1_500, visible_fraction=0.8)]
    )
    assert high.decision.counted and high.decision.rule == "POST.default"


async def test_unknown_content_creates_nothing(deps, runtime, clock, video):
    with pytest.raises(ContentNotFound, match="ghost"):
        await record_views(deps, ALICE, [ev(content="ghost", watched_ms=31_000)])
    assert await runtime.db["view_sessions"].count_documents({}) == 0


async def test_batch_of_100_costs_constant_round_trips(
    deps, runtime, mongo_db, clock, workers, video, monkeypatch
):
    batch = [ev(f"s{i}", device_id=f"d{i}", watched_ms=31_000) for i in range(100)]
    await deps.contents.get_many(["v1"])  # warm the immutable content cache
    mongo_db.counts.clear()
    trips = RoundTrips(monkeypatch)
    results = await record_views(deps, None, batch)
    assert all(r.decision.counted for r in results)
    assert trips.count == 3, "marks read, marks claim, log append"
    assert sum(mongo_db.counts.values()) == 2, mongo_db.counts  # sessions read, bulk write
    monkeypatch.undo()
    await workers["aggregator"].run_once()
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (100, 100)
    assert await workers["archiver"].run_once() == 200  # 100 raw events + 100 counted views


async def test_concurrent_sessions_of_one_viewer_count_once(deps, clock, workers, video):
    batches = [[ev(f"s{i}", watched_ms=31_000)] for i in range(8)]
    results = await asyncio.gather(*(record_views(deps, ALICE, b) for b in batches))
    assert sum(r.decision.counted for (r,) in results) == 1
    await workers["aggregator"].run_once()
    assert (await summary(deps)).views == 1


async def test_flush_then_rebuild_and_reconcile_views(
    deps, runtime, clock, workers, video, app_redis
):
    for i in range(5):
        await record_views(deps, Actor(f"u{i}"), [ev(f"s{i}", watched_ms=31_000)])
    await workers["aggregator"].run_once()
    await app_redis.flushall()
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (5, 5)
    await app_redis.hset(runtime.services.keys.counters("v1"), mapping={"views": 9, "_last": 0})
    await app_redis.delete(runtime.services.keys.uniques("v1"))
    repairs, _ = await reconcile(deps, ["v1"], settle_ms=0)
    assert repairs[0].fields == {"views": (9, 5), "uniqueViewers": (0, 5)}
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (5, 5)


async def test_live_update_carries_views(deps, runtime, clock, workers, video):
    channel = runtime.services.keys.channel("v1")
    async with runtime.services.hub.subscribe([channel]) as sub:
        await record_views(deps, ALICE, [ev(watched_ms=31_000)])
        await workers["aggregator"].run_once()
        update = await asyncio.wait_for(sub.__anext__(), 5)
    data = orjson.loads(update.message)
    assert data["n"]["views"] == 1 and data["u"] == 1


async def test_view_session_only_for_its_viewer_or_admin(deps, clock, video):
    await record_views(deps, ALICE, [ev(watched_ms=1_000)])
    assert (await view_session(deps, ALICE, "s1")).session_id == "s1"
    assert (await view_session(deps, Actor("root", frozenset({"admin"})), "s1")).session_id == "s1"
    from domain.errors import NotFound

    with pytest.raises(NotFound):
        await view_session(deps, Actor("mallory"), "s1")
    with pytest.raises(Unauthenticated):
        await view_session(deps, None, "s1")


async def test_event_for_another_viewers_session_is_refused_alone(deps, clock, video):
    await record_views(deps, ALICE, [ev(watched_ms=1_000)])
    clock.advance(seconds=40)
    stolen, own = await record_views(
        deps, Actor("mallory"), [ev(watched_ms=40_000), ev("m1", watched_ms=31_000)]
    )
    assert not stolen.decision.counted
    assert stolen.decision.reason == "refused: session 's1' belongs to another viewer"
    assert own.decision.counted  # the rest of the batch is not lost
    found = await view_session(deps, ALICE, "s1")
    assert found.watched_ms == 1_000 and found.events == 1  # untouched


async def test_event_for_a_session_of_another_content_is_refused(deps, clock, video):
    await record_views(deps, ALICE, [ev(watched_ms=1_000)])
    (r,) = await record_views(deps, ALICE, [ev(content="p1", watched_ms=5_000)])
    assert r.decision.reason.startswith("refused: session 's1' is for content 'v1'")
