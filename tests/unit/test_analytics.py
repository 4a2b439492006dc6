"""Creator analytics, the pure part: hand-computed tables for every definition."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from domain.analytics import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    Breakdown,
    BucketKey,
    Completion,
    CoverPiece,
    Granularity,
    ReactionChange,
    SeriesPoint,
    TimeRange,
    TopContent,
    Totals,
    at_ms,
    breakdown,
    bucket_end,
    bucket_start,
    bucket_starts,
    check_range,
    completion,
    completion_of,
    content_scope,
    cover,
    creator_scope,
    dimension_key,
    event_counters,
    first_like_ms,
    fold,
    ms_of,
    reaction_changes,
    reactor_of,
    series,
    top_contents,
    totals,
    viewer_of,
)
from domain.errors import BadUserInput
from domain.events import RAW_VIEW, REACTION, VIEW, VIEW_END, EngagementEvent
from domain.log import Delivery
from domain.reactions import ReactionType as R
from storage.keys import Keys
from workers.analytics import by_content, cut, dense, groups, log_token, per_content, units

M, H, D = Granularity.MINUTE, Granularity.HOUR, Granularity.DAY
T0 = datetime(2026, 3, 10, tzinfo=UTC)  # a Tuesday, 00:00 UTC
T0_MS = ms_of(T0)
PLUS2 = timezone(timedelta(hours=2))
MINUS5 = timezone(timedelta(hours=-5, minutes=-30))


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, sec, us, tzinfo=UTC)


# --- time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "ms"),
    [
        (utc(1970, 1, 1), 0),
        (utc(2026, 3, 10), 1_773_100_800_000),
        (datetime(2026, 3, 10, 2, tzinfo=PLUS2), 1_773_100_800_000),
        (utc(2026, 3, 10, 0, 0, 0, 1_999), 1_773_100_800_001),  # floored, not rounded
        (utc(1969, 12, 31, 23, 59, 59, 999_000), -1),
    ],
)
def test_ms_of_is_exact_whatever_the_offset(moment: datetime, ms: int) -> None:
    assert ms_of(moment) == ms
    assert at_ms(ms) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert at_ms(ms).utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("ms", "granularity", "start", "end"),
    [
        (T0_MS, M, T0_MS, T0_MS),
        (T0_MS + 1, M, T0_MS, T0_MS + MINUTE_MS),
        (T0_MS + MINUTE_MS - 1, M, T0_MS, T0_MS + MINUTE_MS),
        (T0_MS + 90 * MINUTE_MS, H, T0_MS + HOUR_MS, T0_MS + 2 * HOUR_MS),
        (T0_MS + 25 * HOUR_MS, D, T0_MS + DAY_MS, T0_MS + 2 * DAY_MS),
        (T0_MS + DAY_MS, D, T0_MS + DAY_MS, T0_MS + DAY_MS),
    ],
)
def test_bucket_floor_and_ceiling(ms: int, granularity: Granularity, start: int, end: int) -> None:
    assert bucket_start(ms, granularity) == start
    assert bucket_end(ms, granularity) == end


# (from, to, granularity, widened from, widened to, number of buckets)
WIDENING = [
    (
        utc(2026, 3, 10, 10, 0, 30),
        utc(2026, 3, 10, 10, 2, 1),
        M,
        utc(2026, 3, 10, 10, 0),
        utc(2026, 3, 10, 10, 3),
        3,
    ),
    (utc(2026, 3, 10, 10), utc(2026, 3, 10, 11), M, utc(2026, 3, 10, 10), utc(2026, 3, 10, 11), 60),
    (
        utc(2026, 3, 10, 10, 59),
        utc(2026, 3, 10, 11, 1),
        H,
        utc(2026, 3, 10, 10),
        utc(2026, 3, 10, 12),
        2,
    ),
    # 01:30 at +02:00 is 23:30 UTC the day before: buckets are UTC days.
    (
        datetime(2026, 3, 11, 1, 30, tzinfo=PLUS2),
        datetime(2026, 3, 12, 1, 30, tzinfo=PLUS2),
        D,
        utc(2026, 3, 10),
        utc(2026, 3, 12),
        2,
    ),
    # 19:00 at -05:30 is 00:30 UTC the next day.
    (
        datetime(2026, 3, 9, 19, tzinfo=MINUS5),
        datetime(2026, 3, 9, 20, tzinfo=MINUS5),
        H,
        utc(2026, 3, 10, 0),
        utc(2026, 3, 10, 2),
        2,
    ),
    (utc(2026, 3, 10), utc(2026, 3, 10, 0, 0, 0, 1000), D, utc(2026, 3, 10), utc(2026, 3, 11), 1),
]


@pytest.mark.parametrize(("start", "end", "g", "wide_start", "wide_end", "n"), WIDENING)
def test_ranges_widen_to_whole_utc_buckets(
    start: datetime,
    end: datetime,
    g: Granularity,
    wide_start: datetime,
    wide_end: datetime,
    n: int,
) -> None:
    widened = check_range(TimeRange(start, end), g)
    assert widened == TimeRange(wide_start, wide_end)
    assert widened.start.utcoffset() == timedelta(0)
    starts = bucket_starts(widened, g)
    assert len(starts) == n
    assert starts[0] == ms_of(wide_start)
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    ("g", "longest", "message"),
    [
        (M, timedelta(hours=48), "a MINUTE range is at most 48 hours"),
        (H, timedelta(days=400), "an HOUR range is at most 400 days"),
        (D, timedelta(days=1826), "a DAY range is at most 1826 days"),
    ],
)
def test_range_limits(g: Granularity, longest: timedelta, message: str) -> None:
    start = utc(2026, 3, 10, 10, 0, 30)
    check_range(TimeRange(start, start + longest), g)  # the limit itself is allowed
    with pytest.raises(BadUserInput) as exc:
        check_range(TimeRange(start, start + longest + timedelta(milliseconds=1)), g)
    assert message in exc.value.message


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        (utc(2026, 3, 10, 1), utc(2026, 3, 10, 1), "before"),
        (utc(2026, 3, 10, 2), utc(2026, 3, 10, 1), "before"),
        # The same instant written in two offsets is still empty.
        (datetime(2026, 3, 10, 3, tzinfo=PLUS2), utc(2026, 3, 10, 1), "before"),
        (datetime(2026, 3, 10, 1), utc(2026, 3, 10, 2), "time zone"),
        (utc(2026, 3, 10, 1), datetime(2026, 3, 10, 2), "time zone"),
    ],
)
def test_bad_ranges(start: datetime, end: datetime, words: str) -> None:
    with pytest.raises(BadUserInput) as exc:
        check_range(TimeRange(start, end), H)
    assert words in exc.value.message


# (start offset ms, end offset ms from T0) -> expected pieces
COVERS = [
    ((0, DAY_MS), [CoverPiece(D, (T0_MS,))]),
    ((0, 3 * MINUTE_MS), [CoverPiece(M, (T0_MS, T0_MS + MINUTE_MS, T0_MS + 2 * MINUTE_MS))]),
    (
        (58 * MINUTE_MS, 2 * HOUR_MS + MINUTE_MS),
        [
            CoverPiece(H, (T0_MS + HOUR_MS,)),
            CoverPiece(M, (T0_MS + 58 * MINUTE_MS, T0_MS + 59 * MINUTE_MS, T0_MS + 2 * HOUR_MS)),
        ],
    ),
    (
        (23 * HOUR_MS + 59 * MINUTE_MS, 2 * DAY_MS + HOUR_MS),
        [
            CoverPiece(D, (T0_MS + DAY_MS,)),
            CoverPiece(H, (T0_MS + 2 * DAY_MS,)),
            CoverPiece(M, (T0_MS + 23 * HOUR_MS + 59 * MINUTE_MS,)),
        ],
    ),
    # Within one hour, not starting on it: minutes only.
    ((5 * MINUTE_MS, HOUR_MS), [CoverPiece(M, tuple(T0_MS + i * MINUTE_MS for i in range(5, 60)))]),
]


@pytest.mark.parametrize(("bounds", "pieces"), COVERS)
def test_cover_uses_the_coarsest_buckets(bounds: tuple[int, int], pieces: list[CoverPiece]) -> None:
    assert cover(T0_MS + bounds[0], T0_MS + bounds[1]) == pieces


def test_cover_is_exactly_the_range() -> None:
    rng = random.Random(7)
    for _ in range(300):
        a = T0_MS + rng.randrange(0, 5 * 24 * 60) * MINUTE_MS
        b = a + rng.randrange(1, 4 * 24 * 60) * MINUTE_MS
        minutes: list[int] = []
        for piece in cover(a, b):
            size = {M: MINUTE_MS, H: HOUR_MS, D: DAY_MS}[piece.granularity]
            for s in piece.starts:
                assert s % size == 0
                minutes.extend(range(s, s + size, MINUTE_MS))
        assert sorted(minutes) == list(range(a, b, MINUTE_MS))
        assert len(cover(a, b)) <= 3


def test_a_400_day_hour_range_reads_few_buckets() -> None:
    pieces = cover(T0_MS + 5 * HOUR_MS, T0_MS + 400 * DAY_MS + 5 * HOUR_MS)
    assert sum(len(p.starts) for p in pieces) == 399 + 24
    with pytest.raises(ValueError):
        cover(T0_MS + 1, T0_MS + DAY_MS)


# --- what an event adds ----------------------------------------------------------


def ev(
    kind: str,
    data: dict | None = None,
    *,
    at: int = T0_MS,
    actor: str = "u1",
    deltas: dict | None = None,
    cid: str = "c1",
    eid: str | None = None,
) -> EngagementEvent:
    return EngagementEvent(
        event_id=eid or f"{kind}-{actor}-{at}-{random.random()}",
        kind=kind,
        content_id=cid,
        actor=actor,
        occurred_at_ms=at,
        # A counted view's deltas, as the view path writes them for a trusted viewer.
        deltas=deltas if deltas is not None else ({"views": 1} if kind == VIEW else {}),
        data=data or {},
    )


def reaction(
    before: str | None, after: str | None, region: str | None = "US", **kw: Any
) -> EngagementEvent:
    deltas: dict[str, int] = {}
    if before:
        deltas[f"r:{before}"] = -1
    if after:
        deltas[f"r:{after}"] = 1
    if bool(after) != bool(before):
        deltas["likes"] = 1 if after else -1
    data = {"before": before, "after": after}
    if region is not None:
        data["region"] = region
    return ev(REACTION, data, deltas=deltas, **kw)


COUNTERS = [
    (
        "like added",
        reaction(None, "LIKE"),
        {
            "likes_added": 1,
            "reactions.LIKE": 1,
            "platform.unknown.likes_added": 1,
            "source.unknown.likes_added": 1,
            "region.US.likes_added": 1,
        },
    ),
    (
        "like added, no region (an older event)",
        reaction(None, "WOW", region=None),
        {
            "likes_added": 1,
            "reactions.WOW": 1,
            "platform.unknown.likes_added": 1,
            "source.unknown.likes_added": 1,
            "region.unknown.likes_added": 1,
        },
    ),
    ("like removed", reaction("LOVE", None), {"likes_removed": 1, "reactions.LOVE": -1}),
    ("switch: neither", reaction("LIKE", "LOVE"), {"reactions.LIKE": -1, "reactions.LOVE": 1}),
    (
        "counted view",
        ev(VIEW, {"platform": "IOS", "source": "FEED", "region": "DE"}, deltas={"views": 1}),
        {
            "views": 1,
            "platform.IOS.views": 1,
            "source.FEED.views": 1,
            "region.DE.views": 1,
        },
    ),
    (
        "counted view, nothing known",
        ev(VIEW, {"platform": None}, deltas={"views": 1}),
        {
            "views": 1,
            "platform.unknown.views": 1,
            "source.unknown.views": 1,
            "region.unknown.views": 1,
        },
    ),
    (
        "raw view event",
        ev(
            RAW_VIEW,
            {
                "accepted_ms": 4_000,
                "watched_ms": 9_000,
                "platform": "WEB",
                "source": None,
                "region": "FR",
            },
        ),
        {
            "watch_ms": 4_000,
            "platform.WEB.watch_ms": 4_000,
            "source.unknown.watch_ms": 4_000,
            "region.FR.watch_ms": 4_000,
        },
    ),
    (
        "raw view event flagged impossible",
        ev(RAW_VIEW, {"accepted_ms": 0, "watched_ms": 9_000}),
        {},
    ),
    ("raw view event without accepted_ms", ev(RAW_VIEW, {"watched_ms": 9_000}), {}),
    (
        "session end at half",
        ev(VIEW_END, {"position_ms": 30_000, "duration_ms": 60_000}),
        {"completion.n": 1, "completion.sum_ppm": 500_000, "completion.h5": 1},
    ),
    (
        "session end past the end",
        ev(VIEW_END, {"position_ms": 90_000, "duration_ms": 60_000}),
        {"completion.n": 1, "completion.sum_ppm": 1_000_000, "completion.h9": 1},
    ),
    (
        "session end without a position",
        ev(VIEW_END, {"position_ms": None, "duration_ms": 60_000}),
        {"completion.n": 1, "completion.h0": 1},
    ),
    ("session end, no duration", ev(VIEW_END, {"position_ms": 5, "duration_ms": None}), {}),
    ("session end, zero duration", ev(VIEW_END, {"position_ms": 5, "duration_ms": 0}), {}),
    ("another kind", ev("something_else", {"accepted_ms": 5}), {}),
]


@pytest.mark.parametrize(
    ("event", "expected"), [c[1:] for c in COUNTERS], ids=[c[0] for c in COUNTERS]
)
def test_event_counters(event: EngagementEvent, expected: dict[str, int]) -> None:
    assert event_counters(event) == expected


@pytest.mark.parametrize(
    ("event", "viewer", "reactor", "first"),
    [
        (reaction(None, "LIKE", actor="u7", at=5), None, "u7", 5),
        (reaction("LIKE", "SAD", actor="u7", at=5), None, "u7", None),
        (reaction("LIKE", None, actor="u7", at=5), None, None, None),
        (ev(VIEW, actor="d:dev1"), "d:dev1", None, None),
        (ev(RAW_VIEW, {"accepted_ms": 5}, actor="d:dev1"), None, None, None),
    ],
)
def test_people_and_first_likes(
    event: EngagementEvent, viewer: str | None, reactor: str | None, first: int | None
) -> None:
    assert viewer_of(event) == viewer
    assert reactor_of(event) == reactor
    assert first_like_ms(event) == first


@pytest.mark.parametrize(
    ("position", "duration", "ppm", "bin_"),
    [
        (0, 1000, 0, 0),
        (99, 1000, 99_000, 0),
        (100, 1000, 100_000, 1),
        (300, 1000, 300_000, 3),  # 0.3 is in [0.3, 0.4): integers, no float surprise
        (999, 1000, 999_000, 9),
        (1000, 1000, 1_000_000, 9),  # 1.0 is in the last bin
        (5000, 1000, 1_000_000, 9),
        (None, 1000, 0, 0),
        (-5, 1000, 0, 0),
        (1, 3, 333_333, 3),
    ],
)
def test_completion_of(position: int | None, duration: int, ppm: int, bin_: int) -> None:
    assert completion_of(position, duration) == (ppm, bin_)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (None, "unknown"),
        ("", "unknown"),
        ("IOS", "IOS"),
        (R.LIKE, "LIKE"),
        ("a.b", "unknown"),
        ("$x", "unknown"),
    ],
)
def test_dimension_key(value: object, key: str) -> None:
    assert dimension_key(value) == key


# --- folding ---------------------------------------------------------------------


def test_fold_adds_to_both_scopes_at_every_granularity() -> None:
    at = T0_MS + 2 * HOUR_MS + 3 * MINUTE_MS + 500
    events = [
        ev(VIEW, {"platform": "IOS"}, at=at, actor="d:a", eid="v1"),
        ev(VIEW, {"platform": "IOS"}, at=at + 1, actor="d:b", eid="v2"),
        reaction(None, "LIKE", actor="u9", at=at + 2, eid="r1"),
        ev(RAW_VIEW, {"accepted_ms": 0}, at=at, eid="w0"),  # adds nothing: not folded
    ]
    f = fold(events, {"c1": "alice"})
    assert f.events == 3
    starts = {M: T0_MS + 2 * HOUR_MS + 3 * MINUTE_MS, H: T0_MS + 2 * HOUR_MS, D: T0_MS}
    assert set(f.buckets) == {
        BucketKey(scope, g, s) for scope in ("c:c1", "u:alice") for g, s in starts.items()
    }
    for key, delta in f.buckets.items():
        assert delta.counters["views"] == 2
        assert delta.counters["platform.IOS.views"] == 2
        assert delta.counters["likes_added"] == 1
        assert delta.viewers == {"d:a", "d:b"}
        assert delta.reactors == {"u9"}
        assert list(delta.parts) == ["v1", "v2", "r1"]
        assert delta.creator == ("alice" if key.scope == "c:c1" else None)
    assert f.first_likes == {"c1": at + 2}


def test_fold_of_an_unknown_content_and_tokens() -> None:
    events = [
        ev(RAW_VIEW, {"accepted_ms": 100}, eid="w1", cid="x"),
        ev(RAW_VIEW, {"accepted_ms": 50}, eid="w2", cid="x"),
        reaction(None, "LIKE", eid="r1", cid="x", at=T0_MS + 9),
        reaction(None, "LOVE", eid="r2", cid="x", at=T0_MS + 3),
    ]
    f = fold(events, {}, lambda e: "log:0:1-0" if e.kind == RAW_VIEW else e.event_id)
    assert {k.scope for k in f.buckets} == {"c:x"}  # no creator known: no creator scope
    delta = f.buckets[BucketKey("c:x", D, T0_MS)]
    assert delta.counters["watch_ms"] == 150
    assert delta.parts["log:0:1-0"] == [
        {
            "watch_ms": 100,
            "platform.unknown.watch_ms": 100,
            "source.unknown.watch_ms": 100,
            "region.unknown.watch_ms": 100,
        },
        {
            "watch_ms": 50,
            "platform.unknown.watch_ms": 50,
            "source.unknown.watch_ms": 50,
            "region.unknown.watch_ms": 50,
        },
    ]
    assert f.first_likes == {"x": T0_MS + 3}
    assert set(f.only(["u:nobody"]).buckets) == set()
    assert f.only(["c:x"]).first_likes == {"x": T0_MS + 3}


def test_fold_only_keeps_the_asked_scopes() -> None:
    events = [reaction(None, "LIKE", cid="c1"), reaction(None, "LIKE", cid="c2")]
    f = fold(events, {"c1": "alice", "c2": "alice"}).only(["c:c1", "u:alice"])
    assert {k.scope for k in f.buckets} == {"c:c1", "u:alice"}
    assert f.buckets[BucketKey("u:alice", D, T0_MS)].counters["likes_added"] == 2
    assert f.buckets[BucketKey("c:c1", D, T0_MS)].counters["likes_added"] == 1
    assert set(f.first_likes) == {"c1"}


# --- reading back ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("counters", "uniques", "reactors", "expected"),
    [
        ({}, 0, 0, Totals(0, 0, 0, 0, 0, 0, None, None, None)),
        (
            {"likes_added": 5, "likes_removed": 2, "views": 12, "watch_ms": 30_000},
            8,
            2,
            Totals(5, 2, 3, 12, 8, 30_000, 2500.0, 0.25, 0.25),
        ),
        # Likes without views: no ratio; people who reacted without a view.
        ({"likes_added": 1}, 0, 1, Totals(1, 0, 1, 0, 0, 0, None, None, None)),
        ({"likes_removed": 3, "views": 6}, 3, 0, Totals(0, 3, -3, 6, 3, 0, 0.0, -0.5, 0.0)),
    ],
)
def test_totals(counters: dict[str, int], uniques: int, reactors: int, expected: Totals) -> None:
    assert totals(counters, uniques, reactors) == expected


def test_series_is_zero_filled_oldest_first() -> None:
    starts = [T0_MS, T0_MS + HOUR_MS, T0_MS + 2 * HOUR_MS]
    points = series(
        starts,
        {T0_MS + HOUR_MS: {"likes_added": 2, "likes_removed": 3, "views": 4, "watch_ms": 5}},
    )
    assert points == (
        SeriesPoint(utc(2026, 3, 10, 0), 0, 0, 0, 0, 0),
        SeriesPoint(utc(2026, 3, 10, 1), 2, 3, -1, 4, 5),
        SeriesPoint(utc(2026, 3, 10, 2), 0, 0, 0, 0, 0),
    )


def test_breakdown_order_and_keys() -> None:
    counters = {
        "platform.IOS.views": 3,
        "platform.WEB.views": 3,
        "platform.WEB.watch_ms": 10,
        "platform.ANDROID.views": 3,
        "platform.ANDROID.watch_ms": 10,
        "platform.ANDROID.likes_added": 1,
        "platform.unknown.likes_added": 7,
        "platform.TV.views": 0,  # nothing left: no row
        "platform.IOS.likes_added": 0,
        "source.FEED.views": 1,
        "views": 99,
    }
    assert breakdown(counters, "platform") == (
        Breakdown("ANDROID", 3, 10, 1),
        Breakdown("WEB", 3, 10, 0),
        Breakdown("IOS", 3, 0, 0),
        Breakdown("unknown", 0, 0, 7),
    )
    assert breakdown(counters, "source") == (Breakdown("FEED", 1, 0, 0),)
    assert breakdown(counters, "region") == ()
    # Ties on every number: by key.
    tied = {"region.US.views": 1, "region.DE.views": 1}
    assert [b.key for b in breakdown(tied, "region")] == ["DE", "US"]


def test_reaction_changes_in_type_order_without_zeros() -> None:
    counters = {"reactions.SAD": -2, "reactions.LIKE": 3, "reactions.LOVE": 0, "reactions.NEW": 4}
    assert reaction_changes(counters) == (ReactionChange(R.LIKE, 3), ReactionChange(R.SAD, -2))


def test_completion_from_sums() -> None:
    assert completion({}) == Completion(0, None, (0,) * 10)
    counters = {
        "completion.n": 4,
        "completion.sum_ppm": 2_100_000,
        "completion.h0": 1,
        "completion.h5": 2,
        "completion.h9": 1,
    }
    assert completion(counters) == Completion(4, 0.525, (1, 0, 0, 0, 0, 2, 0, 0, 0, 1))


def test_top_contents() -> None:
    rows = [
        TopContent("a", 5, 1),
        TopContent("b", 5, 2),
        TopContent("c", 0, 9),
        TopContent("d", 7, 2),
        TopContent("e", 1, 0),
    ]
    by_views, by_likes = top_contents(rows, 3)
    assert [r.content_id for r in by_views] == ["d", "b", "a"]
    assert [r.content_id for r in by_likes] == ["c", "d", "b"]
    assert top_contents(rows, 0) == ((), ())
    assert [r.content_id for r in top_contents(rows, 10)[1]] == ["c", "d", "b", "a"]


# --- keys and the worker's grouping -----------------------------------------------


def test_sketch_keys_of_a_scope_share_one_slot() -> None:
    keys = Keys()
    names = [
        name
        for g in ("MINUTE", "DAY")
        for kind in ("v", "r")
        for name in keys.analytics_sketch("c:a:b", g, 60_000, kind)
    ]
    assert len(set(names)) == 12
    assert all(n.startswith("lv:{an:c:a:b}:") for n in names)
    assert keys.analytics_sketch("c:x", "HOUR", 5, "v") != keys.analytics_sketch(
        "u:x", "HOUR", 5, "v"
    )
    assert "{p2}" in keys.analytics_applied(2)
    assert Keys.ANALYTICS_GROUP == "analytics"


def _delivery(
    msg: str, events: list[EngagementEvent], raw: Sequence[EngagementEvent] = ()
) -> Delivery:
    encoded = orjson.dumps([e.to_dict() for e in raw]) if raw else None
    return Delivery(1, msg, tuple(events), encoded, len(raw))


def test_groups_give_raw_views_their_entry_as_token_and_drop_repeats() -> None:
    r1, r2 = reaction(None, "LIKE", eid="r1"), reaction("LIKE", None, eid="r2")
    raws = [ev(RAW_VIEW, {"accepted_ms": 1}, eid=f"w{i}") for i in range(5)]
    first = _delivery("1-0", [r1], raws[:3])
    again = _delivery("2-0", [r1, r2], raws)  # a replay with more in it
    out = groups([first, again, first], max_tokens=100)
    assert len(out) == 1
    tokens = [(e.event_id, t) for e, t in out[0]]
    assert tokens == [
        ("r1", "r1"),
        ("w0", log_token(first)),
        ("w1", log_token(first)),
        ("w2", log_token(first)),
        ("r2", "r2"),
        ("w3", log_token(again)),
        ("w4", log_token(again)),
    ]
    assert log_token(first) == "log:1:1-0"


def test_groups_are_cut_by_tokens() -> None:
    ds = [
        _delivery(
            f"{i}-0",
            [reaction(None, "LIKE", eid=f"r{i}")],
            [ev(RAW_VIEW, {"accepted_ms": 1}, eid=f"w{i}.{j}") for j in range(50)],
        )
        for i in range(5)
    ]
    out = groups(ds, max_tokens=4)
    # Each delivery brings two tokens (its reaction, its raw views' entry).
    assert [len({t for _, t in g}) for g in out] == [4, 4, 2]
    assert sum(len(g) for g in out) == 5 * 51
    assert [e.kind for e, _ in out[0]][:2] == [REACTION, RAW_VIEW]


def test_groups_are_cut_by_events_but_keep_an_entry_whole() -> None:
    ds = [
        _delivery(
            f"{i}-0",
            [reaction(None, "LIKE", eid=f"r{i}")],
            [ev(RAW_VIEW, {"accepted_ms": 1}, eid=f"w{i}.{j}") for j in range(50)],
        )
        for i in range(5)
    ]
    out = groups(ds, max_tokens=100, max_events=120)
    # Each delivery is a reaction then 50 raw view events; the third delivery's
    # reaction still fits under 120, its 50 raw views do not.
    assert [len(g) for g in out] == [103, 102, 50]
    assert all(len(g) <= 120 for g in out)
    # An entry larger than the bound still travels as one group, with its token.
    (big,) = groups(ds[:1], max_tokens=100, max_events=10)[1:]
    assert len(big) == 50 and len({t for _, t in big}) == 1


def test_groups_bound_the_tokens_reaching_each_creators_buckets() -> None:
    # Contents a1, a2 of creator A, b1 of creator B, and x (unregistered).
    creators = {"a1": "A", "a2": "A", "b1": "B"}
    ds = [
        _delivery(
            f"{i}-0",
            [reaction(None, "LIKE", eid=f"r{i}.{c}", cid=c) for c in ("a1", "a2", "b1", "x")],
            [ev(RAW_VIEW, {"accepted_ms": 1}, eid=f"w{i}.{c}", cid=c) for c in ("a1", "b1")],
        )
        for i in range(6)
    ]
    out = groups(ds, max_tokens=6, creators=creators)
    for g in out:
        per_scope: dict[str, set[str]] = {}
        for e, t in g:
            scope = creators.get(e.content_id, "content " + e.content_id)
            per_scope.setdefault(scope, set()).add(t)
        # A bucket of creator A gets A's contents' tokens: never more than 6.
        assert all(len(tokens) <= 6 for tokens in per_scope.values())
    # Creator A's buckets see 3 tokens per delivery (two reactions, the entry's raw
    # views): two deliveries per group, i.e. 10 tokens a group in all.
    assert [len({t for _, t in g}) for g in out] == [10, 10, 10]
    assert sum(len(g) for g in out) == 6 * 6
    # Without the creators, every token counts for one shared scope.
    assert max(len({t for _, t in g}) for g in groups(ds, max_tokens=6)) <= 6


def test_by_content_splits_raw_views_by_content_and_orders_by_content() -> None:
    raw = [ev(RAW_VIEW, {"accepted_ms": 1}, eid=f"w{i}", cid=c) for i, c in enumerate("abab")]
    one = [ev(RAW_VIEW, {"accepted_ms": 1}, eid=f"x{i}", cid="b") for i in range(2)]
    first = _delivery("1-0", [reaction(None, "LIKE", eid="r1", cid="b")], raw)
    second = _delivery("2-0", [reaction(None, "LIKE", eid="r2", cid="a")], one)
    split = per_content(units([first, second]))
    # An entry's raw views split by content, each part with the entry's token and
    # its content's; an entry of one content keeps its token.
    assert [[(e.event_id, t) for e, t in unit] for unit in split] == [
        [("r1", "r1")],
        [("w0", f"{log_token(first)}:a"), ("w2", f"{log_token(first)}:a")],
        [("w1", f"{log_token(first)}:b"), ("w3", f"{log_token(first)}:b")],
        [("r2", "r2")],
        [("x0", log_token(second)), ("x1", log_token(second))],
    ]
    # Contents in the order they first appear (b's reaction first), each content's
    # units in log order.
    assert by_content(split) == [split[0], split[2], split[4], split[1], split[3]]
    # A redelivery gives every event the same token, whichever way it is ordered.
    again = per_content(units([second, first]))
    assert {(e.event_id, t) for u in again for e, t in u} == {
        (e.event_id, t) for u in split for e, t in u
    }


@pytest.mark.parametrize(
    ("step_ms", "minutes", "ordered"),
    [
        (1_000, 10, True),  # live: each content's 30 events within a minute
        (MINUTE_MS, 10, False),  # each content's 30 events in 30 minutes
        (MINUTE_MS, 30, True),  # ... which a bound of 30 minutes takes
        (DAY_MS, 10, False),  # a history replayed: days in one read
    ],
)
def test_a_read_is_ordered_by_content_when_its_contents_are_dense(
    step_ms: int, minutes: int, ordered: bool
) -> None:
    events = [
        ev(REACTION, {}, cid=f"c{i % 3}", at=T0_MS + (i // 3) * step_ms, eid=f"r{i}")
        for i in range(90)
    ]
    parts = per_content(units([_delivery("1-0", events)]))
    assert dense(parts, minutes) is ordered


def test_by_content_groups_write_each_content_together() -> None:
    # Ten entries, each with one raw view of each of five contents of one creator.
    contents = [f"c{i}" for i in range(5)]
    ds = [
        _delivery(
            f"{n}-0",
            [],
            [ev(RAW_VIEW, {"accepted_ms": 1}, eid=f"w{n}.{c}", cid=c) for c in contents],
        )
        for n in range(10)
    ]
    creators = dict.fromkeys(contents, "A")
    out = cut(by_content(per_content(units(ds))), creators, max_tokens=20)
    assert [sorted({e.content_id for e, _ in g}) for g in out] == [
        ["c0", "c1"],
        ["c2", "c3"],
        ["c4"],
    ]
    assert all(len({t for _, t in g}) <= 20 for g in out)
    assert sum(len(g) for g in out) == 50
    # In log order every group holds every content.
    in_log_order = cut(per_content(units(ds)), creators, 20)
    assert all(len({e.content_id for e, _ in g}) == 5 for g in in_log_order)


@pytest.mark.parametrize(
    "content_id", ["v1", "a.b", "$x", "50%", "%2E", "a.%24$b%", "%25.", "ünï.côdé"]
)
def test_a_content_id_is_one_field_name_and_comes_back(content_id: str) -> None:
    from domain.analytics import content_key, content_of_key

    key = content_key(content_id)
    assert "." not in key and not key.startswith("$")
    assert content_of_key(key) == content_id


def test_creator_buckets_count_views_and_likes_per_content() -> None:
    from domain.analytics import content_key, content_totals

    events = [
        EngagementEvent("v1", VIEW, "a.1", "x", 0, {"views": 1}, "x", {}),
        EngagementEvent("v2", VIEW, "a.1", "y", 0, {"views": 1}, "y", {}),
        EngagementEvent(
            "r1", REACTION, "b", "u", 0, {"likes": 1, "r:LIKE": 1}, None, {"after": "LIKE"}
        ),
    ]
    out = fold(events, {"a.1": "cr", "b": "cr"})
    day = out.buckets[BucketKey(creator_scope("cr"), Granularity.DAY, 0)].counters
    assert day[f"content.{content_key('a.1')}.views"] == 2
    assert day["content.b.likes_added"] == 1
    # The content's own buckets do not carry them.
    own = out.buckets[BucketKey(content_scope("a.1"), Granularity.DAY, 0)].counters
    assert not any(k.startswith("content.") for k in own)
    assert sorted(content_totals(day), key=lambda t: t.content_id) == [
        TopContent("a.1", 2, 0),
        TopContent("b", 0, 1),
    ]


@pytest.mark.parametrize(
    "event",
    [
        # An excluded actor's engagement (domain/integrity.py) is out of the public
        # count: analytics leave it out too.
        ev(VIEW, {"platform": "IOS"}, actor="d:bot", deltas={"x_views": 1}),
        ev(REACTION, {"before": None, "after": "LIKE"}, actor="bot", deltas={"x_likes": 1}),
        ev(REACTION, {"before": "LIKE", "after": None}, actor="bot", deltas={"x_likes": -1}),
    ],
)
def test_an_excluded_actors_engagement_adds_nothing(event: EngagementEvent) -> None:
    assert event_counters(event) == {}
    assert viewer_of(event) is None and reactor_of(event) is None
    assert first_like_ms(event) is None


def test_a_doubtful_actors_engagement_counts() -> None:
    like = ev(
        REACTION, {"before": None, "after": "LIKE"}, deltas={"likes": 1, "r:LIKE": 1, "d_likes": 1}
    )
    assert event_counters(like)["likes_added"] == 1 and reactor_of(like) == "u1"
