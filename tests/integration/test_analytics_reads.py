"""Creator analytics through the read use cases, from hand-built events rolled up by
the worker: every definition with hand-computed numbers, who may read, the limits."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from domain.analytics import (
    AnalyticsPorts,
    Breakdown,
    Completion,
    Granularity,
    ReactionChange,
    TimeRange,
    TopContent,
    Totals,
    ms_of,
)
from domain.analytics_reads import content_analytics, creator_analytics
from domain.contents import Content, ContentKind
from domain.errors import BadUserInput, ContentNotFound, DomainError, Forbidden, Unauthenticated
from domain.events import RAW_VIEW, REACTION, VIEW, VIEW_END, EngagementEvent
from domain.identity import Actor
from domain.log import Delivery
from domain.reactions import ReactionType as R
from storage.mongo_analytics import MongoAnalytics
from storage.redis_analytics import RedisAnalytics
from tests.integration.doubles import FakeConsumer
from workers.analytics import AnalyticsWorker

M, H, D = Granularity.MINUTE, Granularity.HOUR, Granularity.DAY
# Yesterday, UTC: MINUTE buckets (kept 48 hours) are all still there.
_today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
T0 = _today - timedelta(days=1)
PLUS2 = timezone(timedelta(hours=2))
ALICE, BOB = Actor("alice"), Actor("bob")
ADMIN, SERVICE = Actor("ops", frozenset({"admin"})), Actor("svc", frozenset({"service"}))


def at(hours: int, minutes: int = 0, seconds: int = 0) -> int:
    return ms_of(T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds))


def rng(start: datetime, end: datetime) -> TimeRange:
    return TimeRange(start, end)


def t(hours: int, minutes: int = 0, tz: timezone = UTC) -> datetime:
    return (T0 + timedelta(hours=hours, minutes=minutes)).astimezone(tz)


_ids = itertools.count()


def event(
    kind: str, cid: str, actor: str, ms: int, data: dict, deltas: dict | None = None
) -> EngagementEvent:
    return EngagementEvent(f"{kind}-{next(_ids)}", kind, cid, actor, ms, deltas or {}, None, data)


def react(
    cid: str, user: str, ms: int, before: R | None, after: R | None, region: str | None = "US"
) -> EngagementEvent:
    deltas: dict[str, int] = {}
    if before:
        deltas[f"r:{before.value}"] = -1
    if after:
        deltas[f"r:{after.value}"] = 1
    if (before is None) != (after is None):
        deltas["likes"] = 1 if after else -1  # as the like path writes them
    data: dict[str, Any] = {"before": before, "after": after}
    if region is not None:
        data["region"] = region
    return event(REACTION, cid, user, ms, data, deltas)


def view(
    cid: str,
    viewer: str,
    ms: int,
    platform: str | None = None,
    source: str | None = None,
    region: str | None = None,
) -> EngagementEvent:
    data = {
        "session_id": f"s-{viewer}-{ms}",
        "platform": platform,
        "source": source,
        "region": region,
    }
    return event(VIEW, cid, viewer, ms, data, {"views": 1})


def raw(
    cid: str,
    viewer: str,
    ms: int,
    accepted: int,
    platform: str | None = None,
    source: str | None = None,
    region: str | None = None,
) -> EngagementEvent:
    data = {
        "session_id": "s",
        "watched_ms": accepted + 5,
        "accepted_ms": accepted,
        "platform": platform,
        "source": source,
        "region": region,
        "final": False,
    }
    return event(RAW_VIEW, cid, viewer, ms, data)


def end(
    cid: str, viewer: str, ms: int, position: int | None, duration: int | None
) -> EngagementEvent:
    data = {
        "session_id": "s",
        "position_ms": position,
        "duration_ms": duration,
        "watched_ms": 0,
        "counted": True,
        "reason": "final",
    }
    return event(VIEW_END, cid, viewer, ms, data)


def delivery(events: list[EngagementEvent], msg: int) -> Delivery:
    rest = tuple(e for e in events if e.kind != RAW_VIEW)
    raws = [e.to_dict() for e in events if e.kind == RAW_VIEW]
    return Delivery(0, f"{msg}-0", rest, orjson.dumps(raws) if raws else None, len(raws))


@pytest.fixture
async def analytics(runtime, deps):
    keys = runtime.services.keys
    rollups = MongoAnalytics(runtime.db)
    sketches = RedisAnalytics(runtime.redis, keys, 3_600_000)
    deps.analytics = AnalyticsPorts(rollups, sketches)
    worker = AnalyticsWorker(FakeConsumer(), deps.contents, rollups, sketches, sketches)
    await deps.contents.insert(
        Content("vid", "alice", ContentKind.VIDEO, T0 + timedelta(hours=9), 100_000)
    )
    await deps.contents.insert(Content("post", "alice", ContentKind.POST, T0, None))
    await deps.contents.insert(Content("other", "bob", ContentKind.VIDEO, T0, 60_000))
    return worker


# The hand-built day of "vid" (creator alice, registered at 09:00, 100 s long).
SCENARIO = [
    react("vid", "u1", at(10, 0, 10), None, R.LIKE, "US"),
    react("vid", "u2", at(10, 0, 20), None, R.LOVE, None),  # an older event: no region
    react("vid", "u1", at(10, 5), R.LIKE, R.WOW),  # a switch: neither added nor removed
    react("vid", "u2", at(11, 30), R.LOVE, None),
    view("vid", "d:v1", at(10, 1), "IOS", "FEED", "DE"),
    view("vid", "u:u1", at(10, 2), "WEB", None, "US"),
    view("vid", "d:v1", at(11, 10), "IOS", "FEED", "DE"),  # the same viewer, a new session
    raw("vid", "d:v1", at(10, 1, 5), 30_000, "IOS", "FEED", "DE"),
    raw("vid", "u:u1", at(10, 2, 30), 10_000, "WEB", None, "US"),
    raw("vid", "u:u1", at(10, 3), 0, "WEB", None, "US"),  # flagged impossible
    raw("vid", "d:v1", at(11, 10, 30), 20_000, "IOS", "FEED", "DE"),
    end("vid", "d:v1", at(10, 4), 50_000, 100_000),  # 0.5
    end("vid", "u:u1", at(10, 3, 30), 250_000, 100_000),  # past the end: 1.0, last bin
    end("vid", "d:v1", at(11, 15), None, 100_000),  # no position: 0
    # alice's post, and bob's video.
    react("post", "u3", at(10, 30), None, R.LIKE, "FR"),
    view("post", "u:u3", at(10, 31), "ANDROID", "SEARCH", "FR"),
    end("post", "u:u3", at(10, 32), 10, None),  # no duration: no completion
    react("other", "u1", at(10, 0), None, R.LIKE),
    view("other", "d:v9", at(10, 0), "IOS"),
]


@pytest.fixture
async def scenario(analytics):
    await analytics.process([delivery(SCENARIO[:9], 1), delivery(SCENARIO[9:], 2)])
    return analytics


async def test_content_analytics_hour(deps, scenario):
    # 11:30 at +02:00 is 09:30 UTC: widened to 09:00; 14:00 at +02:00 is 12:00 UTC.
    r = await content_analytics(
        deps, deps.analytics, ALICE, "vid", rng(t(9, 30, PLUS2), t(12, 0, PLUS2)), H
    )
    assert r.range == TimeRange(T0 + timedelta(hours=9), T0 + timedelta(hours=12))
    assert r.range.start.utcoffset() == timedelta(0)
    assert r.granularity is H
    assert r.totals == Totals(
        likes_added=2,
        likes_removed=1,
        net_likes=1,
        views=3,
        unique_viewers=2,
        watch_time_ms=60_000,
        average_watch_ms=20_000.0,
        like_to_view_ratio=1 / 3,
        engagement_rate=1.0,  # u1 and u2 reacted; 2 distinct viewers
    )
    assert [
        (p.start, p.likes_added, p.likes_removed, p.net_likes, p.views, p.watch_time_ms)
        for p in r.series
    ] == [
        (T0 + timedelta(hours=9), 0, 0, 0, 0, 0),
        (T0 + timedelta(hours=10), 2, 0, 2, 2, 40_000),
        (T0 + timedelta(hours=11), 0, 1, -1, 1, 20_000),
    ]
    # LIKE +1 -1 and LOVE +1 -1 net to nothing; WOW +1.
    assert r.reactions == (ReactionChange(R.WOW, 1),)
    assert r.by_platform == (
        Breakdown("IOS", 2, 50_000, 0),
        Breakdown("WEB", 1, 10_000, 0),
        Breakdown("unknown", 0, 0, 2),  # likes have no platform
    )
    assert r.by_source == (Breakdown("FEED", 2, 50_000, 0), Breakdown("unknown", 1, 10_000, 2))
    assert r.by_region == (
        Breakdown("DE", 2, 50_000, 0),
        Breakdown("US", 1, 10_000, 1),
        Breakdown("unknown", 0, 0, 1),
    )
    assert r.completion == Completion(3, 0.5, (1, 0, 0, 0, 0, 1, 0, 0, 0, 1))
    assert r.time_to_first_like_ms == 3_610_000  # 10:00:10 - 09:00:00


async def test_narrower_ranges_and_other_granularities(deps, scenario):
    minute = await content_analytics(deps, deps.analytics, ALICE, "vid", rng(t(10, 1), t(10, 3)), M)
    assert [p.views for p in minute.series] == [1, 1]
    assert minute.totals.unique_viewers == 2
    assert minute.totals.watch_time_ms == 40_000
    assert minute.totals.engagement_rate == 0.0  # nobody reacted in those two minutes
    assert minute.completion == Completion(0, None, (0,) * 10)

    late = await content_analytics(deps, deps.analytics, ALICE, "vid", rng(t(11), t(12)), H)
    assert (late.totals.unique_viewers, late.totals.views, late.totals.likes_removed) == (1, 1, 1)
    assert late.totals.engagement_rate == 0.0  # u2 removed: after is None
    assert late.totals.like_to_view_ratio == -1.0
    assert late.completion == Completion(1, 0.0, (1,) + (0,) * 9)

    day = await content_analytics(deps, deps.analytics, ADMIN, "vid", rng(t(0), t(24)), D)
    assert len(day.series) == 1 and day.series[0].views == 3
    assert day.totals.unique_viewers == 2 and day.totals.engagement_rate == 1.0

    # Only the WOW switch (10:05) in this minute: a reactor, no views.
    switch = await content_analytics(deps, deps.analytics, ALICE, "vid", rng(t(10, 5), t(10, 6)), M)
    assert switch.totals.unique_viewers == 0
    assert switch.totals.engagement_rate is None
    assert switch.totals.average_watch_ms is None and switch.totals.like_to_view_ratio is None
    assert switch.reactions == (ReactionChange(R.LIKE, -1), ReactionChange(R.WOW, 1))

    empty = await content_analytics(deps, deps.analytics, ALICE, "vid", rng(t(20), t(22)), H)
    assert [p.views for p in empty.series] == [0, 0]
    assert empty.by_platform == () and empty.reactions == ()
    assert empty.time_to_first_like_ms == 3_610_000  # "ever", not in the range


async def test_a_content_without_duration_has_no_completion(deps, scenario):
    r = await content_analytics(deps, deps.analytics, ALICE, "post", rng(t(0), t(24)), D)
    assert r.completion is None
    assert r.totals.views == 1 and r.totals.likes_added == 1
    assert r.by_source == (Breakdown("SEARCH", 1, 0, 0), Breakdown("unknown", 0, 0, 1))
    assert r.time_to_first_like_ms == 37_800_000  # 10:30, registered at midnight


async def test_a_content_never_liked(deps, analytics):
    r = await content_analytics(deps, deps.analytics, ALICE, "vid", rng(t(0), t(24)), D)
    assert r.time_to_first_like_ms is None
    assert r.totals == Totals(0, 0, 0, 0, 0, 0, None, None, None)


async def test_creator_analytics(deps, scenario):
    r = await creator_analytics(deps, deps.analytics, ALICE, "alice", rng(t(9), t(12)), H)
    assert r.totals == Totals(
        likes_added=3,
        likes_removed=1,
        net_likes=2,
        views=4,
        unique_viewers=3,  # d:v1, u:u1, u:u3
        watch_time_ms=60_000,
        average_watch_ms=15_000.0,
        like_to_view_ratio=0.5,
        engagement_rate=1.0,  # u1, u2, u3
    )
    assert [p.views for p in r.series] == [0, 3, 1]
    assert r.top_by_views == (TopContent("vid", 3, 2), TopContent("post", 1, 1))
    assert r.top_by_likes == (TopContent("vid", 3, 2), TopContent("post", 1, 1))
    one = await creator_analytics(deps, deps.analytics, ALICE, "alice", rng(t(9), t(12)), H, 1)
    assert one.top_by_views == (TopContent("vid", 3, 2),)
    none = await creator_analytics(deps, deps.analytics, SERVICE, "alice", rng(t(9), t(12)), H, 0)
    assert none.top_by_views == () and none.totals == r.totals
    # Top lists over an unaligned MINUTE range read hours and minutes: the same sums.
    minute = await creator_analytics(
        deps, deps.analytics, ALICE, "alice", rng(t(9, 59), t(11, 11)), M
    )
    assert minute.top_by_views == (TopContent("vid", 3, 2), TopContent("post", 1, 1))
    bob = await creator_analytics(deps, deps.analytics, BOB, "bob", rng(t(0), t(24)), D)
    assert bob.top_by_views == (TopContent("other", 1, 1),)
    nobody = await creator_analytics(
        deps, deps.analytics, Actor("carol"), "carol", rng(t(0), t(24)), D
    )
    assert nobody.totals.views == 0 and nobody.top_by_views == ()


AUTH = [
    (None, Unauthenticated),
    (BOB, Forbidden),  # another creator
    (Actor("alice-not"), Forbidden),
    (Actor("mod", frozenset({"moderator"})), Forbidden),
    (ALICE, None),
    (ADMIN, None),
    (SERVICE, None),
]


@pytest.mark.parametrize(("actor", "error"), AUTH)
async def test_who_may_read(deps, analytics, actor, error):
    calls = [
        content_analytics(deps, deps.analytics, actor, "vid", rng(t(0), t(1)), H),
        creator_analytics(deps, deps.analytics, actor, "alice", rng(t(0), t(1)), H),
    ]
    for call in calls:
        if error is None:
            await call
        else:
            with pytest.raises(error):
                await call


async def test_unknown_content_and_bad_input(deps, analytics):
    with pytest.raises(ContentNotFound):
        await content_analytics(deps, deps.analytics, ADMIN, "nope", rng(t(0), t(1)), H)
    with pytest.raises(Unauthenticated):
        await content_analytics(deps, deps.analytics, None, "nope", rng(t(0), t(1)), H)
    bad = [
        (rng(t(0), t(49)), M, "a MINUTE range is at most 48 hours"),
        (rng(t(0), t(401 * 24)), H, "an HOUR range is at most 400 days"),
        (rng(t(0), t(1827 * 24)), D, "at most 1826 days"),
        (rng(t(2), t(1)), H, "before"),
        (rng(t(1).replace(tzinfo=None), t(2)), H, "time zone"),
    ]
    for time_range, g, words in bad:
        for call in (
            content_analytics(deps, deps.analytics, ALICE, "vid", time_range, g),
            creator_analytics(deps, deps.analytics, ALICE, "alice", time_range, g),
        ):
            with pytest.raises(BadUserInput) as exc:
                await call
            assert words in exc.value.message
    for top in (-1, 101):
        with pytest.raises(BadUserInput, match="top must be between 0 and 100"):
            await creator_analytics(deps, deps.analytics, ALICE, "alice", rng(t(0), t(1)), H, top)
    await creator_analytics(deps, deps.analytics, ALICE, "alice", rng(t(0), t(1)), H, 100)
    with pytest.raises(DomainError, match="not configured"):
        await content_analytics(deps, None, ALICE, "vid", rng(t(0), t(1)), H)


async def test_unique_viewers_exact_below_100_within_2_percent_above(deps, analytics):
    # 10:00: 60 viewers, 10:01: 60 others, 10:02: 99 of 10:00's plus 39 new
    # (overflows: 138 > 100), 10:03: 150 new.
    a = [f"d:a{i}" for i in range(60)]
    b = [f"d:b{i}" for i in range(60)]
    c = a[:50] + b[:49] + [f"d:c{i}" for i in range(39)]
    d = [f"d:d{i}" for i in range(150)]
    events = [
        view("vid", v, at(10, minute, 1)) for minute, vs in enumerate([a, b, c, d]) for v in vs
    ]
    events += [react("vid", f"u{i}", at(10, 1, 2), None, R.LIKE) for i in range(30)]
    await analytics.process([delivery(events, 1)])

    async def uniques(
        start: datetime, stop: datetime, g: Granularity = M
    ) -> tuple[int, float | None]:
        r = await content_analytics(deps, deps.analytics, ALICE, "vid", rng(start, stop), g)
        return r.totals.unique_viewers, r.totals.engagement_rate

    assert await uniques(t(10, 0), t(10, 1)) == (60, 0.0)
    assert await uniques(t(10, 1), t(10, 2)) == (60, 0.5)  # 30 reacted / 60
    # Two buckets, neither overflowed: their sets' union is exact, past 100 too
    # (Redis's estimate of these 120 is 117, 2.5% off).
    assert await uniques(t(10, 0), t(10, 2)) == (120, 0.25)
    # A bucket that overflowed alone: the estimate, close to its 138.
    over, _ = await uniques(t(10, 2), t(10, 3))
    assert abs(over - 138) <= 0.02 * 138
    everyone = 60 + 60 + 39 + 150
    for start, stop, g in [(t(10), t(10, 4), M), (t(10), t(11), H), (t(0), t(24), D)]:
        n, rate = await uniques(start, stop, g)
        assert abs(n - everyone) <= 0.02 * everyone, (g, n)
        assert rate == pytest.approx(30 / n)
    # Exact across buckets: 13:00 and 13:01 share 20 of their 40 viewers.
    small = [view("other", v, at(13, m, 0)) for m, vs in enumerate([a[:40], a[20:60]]) for v in vs]
    await analytics.process([delivery(small, 2)])
    r = await content_analytics(deps, deps.analytics, ADMIN, "other", rng(t(13), t(14)), H)
    assert r.totals.unique_viewers == 60
    r = await content_analytics(deps, deps.analytics, ADMIN, "other", rng(t(13, 1), t(13, 2)), M)
    assert r.totals.unique_viewers == 40
