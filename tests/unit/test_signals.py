"""Ranking signals (domain/signals.py), pure: sliding window sums, the slope, the
features and their nulls, and what events add to the store."""

from __future__ import annotations

from typing import Any

import pytest

from domain.events import INTEGRITY, RAW_VIEW, REACTION, VIEW, EngagementEvent
from domain.signals import (
    CUTS,
    EMPTY,
    MINUTE_MS,
    Minute,
    Rates,
    RawSignals,
    compute,
    fold,
    slope,
    sums,
    window_sum,
)
from tests.unit.public_deltas import deltas_of

M = 29_833_333  # a minute index
START = M * MINUTE_MS  # its first ms
HALF = START + 30_000  # half way through minute M


@pytest.mark.parametrize(
    ("counts", "now", "newer", "older", "expected"),
    [
        # The current minute counts over its elapsed part: all of it is inside.
        ({M: 6}, HALF, 0, 1, 6.0),
        # The previous minute overlaps the last minute by half.
        ({M - 1: 10}, HALF, 0, 1, 5.0),
        ({M - 1: 10, M: 6}, HALF, 0, 1, 11.0),
        # 15 minutes: the oldest minute (M - 15) overlaps by half too.
        ({M - 15: 8, M - 14: 4, M: 2}, HALF, 0, 15, 4.0 + 4 + 2),
        # A window in the past: [now - 2, now - 1) minutes.
        ({M - 2: 10, M - 1: 10, M: 10}, HALF, 1, 2, 10.0),
        # At the minute's first ms the current minute has no elapsed part.
        ({M: 6, M - 1: 4}, START, 0, 1, 4.0),
        # Future minutes and empty ones count nothing.
        ({M + 1: 9, M - 3: 0}, HALF, 0, 60, 0.0),
    ],
)
def test_window_sum(
    counts: dict[int, int], now: int, newer: float, older: float, expected: float
) -> None:
    assert window_sum(counts, now, newer, older) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], 0.0),
        ([5.0], 0.0),
        ([1.0, 2.0, 3.0], 1.0),
        ([3.0, 3.0, 3.0], 0.0),
        ([0.0, 0.0, 3.0], 1.5),
        ([4.0, 2.0], -2.0),
    ],
)
def test_slope(values: list[float], expected: float) -> None:
    assert slope(values) == pytest.approx(expected)


def raw(**kw: Any) -> RawSignals:
    base: dict[str, Any] = {
        "minutes": {},
        "likes": 0,
        "views": 0,
        "unique_viewers": 0,
        "reacting_viewers": 0,
        "watch_ms": 0,
        "updated_at_ms": None,
    }
    return RawSignals(**{**base, **kw})


def test_compute_by_hand() -> None:
    minutes = {M - 2: Minute(views=3), M - 1: Minute(likes=2), M: Minute(views=6)}
    r = raw(
        minutes=minutes,
        likes=4,
        views=10,
        unique_viewers=3,
        reacting_viewers=2,
        watch_ms=3000,
        updated_at_ms=HALF - 1,
    )
    s = compute("c1", r, HALF)
    assert s.views_per_minute == Rates(6.0, 9 / 15, 9 / 60)
    assert s.likes_per_minute == Rates(1.0, 2 / 15, 2 / 60)
    # The 15 complete minutes before M: only M - 2 (x = 13) has views.
    assert s.growth_slope == pytest.approx((13 - 7) * 3 / 280)
    assert s.velocity_ratio is None  # no views in the 60 minutes before the last 5
    assert s.engagement_ratio == pytest.approx(0.4)
    assert s.view_to_like_conversion == pytest.approx(2 / 3)
    assert s.unique_viewers == 3
    assert s.average_watch_ms == pytest.approx(300.0)
    assert s.updated_at_ms == HALF - 1


def test_velocity_ratio_against_the_hour_before() -> None:
    # 60 views spread over the hour before the last 5 minutes; 10 in the last 5.
    minutes = {m: Minute(views=1) for m in range(M - 65, M - 5)}
    minutes[M - 2] = Minute(views=10)
    s = compute("c1", raw(minutes=minutes), START)
    assert s.velocity_ratio == pytest.approx((10 / 5) / (60 / 60))


@pytest.mark.parametrize(
    ("kw", "engagement", "conversion", "watch"),
    [
        ({}, None, None, None),
        ({"likes": 3}, None, None, None),  # no views: no divisor
        ({"views": 4, "likes": 1}, 0.25, None, 0.0),
        # An intersection estimate above the viewers is clamped to them.
        ({"unique_viewers": 2, "reacting_viewers": 5}, None, 1.0, None),
        ({"unique_viewers": 2, "reacting_viewers": -1}, None, 0.0, None),
    ],
)
def test_ratios_null_on_zero_divisors(
    kw: dict[str, Any], engagement: float | None, conversion: float | None, watch: float | None
) -> None:
    s = compute("c1", raw(**kw), HALF)
    assert s.engagement_ratio == engagement
    assert s.view_to_like_conversion == conversion
    assert s.average_watch_ms == watch


def test_empty_reads_as_zeros() -> None:
    s = compute("c1", EMPTY, HALF)
    assert s.views_per_minute == s.likes_per_minute == Rates(0.0, 0.0, 0.0)
    assert (s.growth_slope, s.velocity_ratio, s.unique_viewers, s.updated_at_ms) == (
        0.0,
        None,
        0,
        None,
    )


def ev(kind: str, ms: int, actor: str = "u1", cid: str = "c1", **data: Any) -> EngagementEvent:
    deltas = deltas_of(kind, data)
    return EngagementEvent(f"{kind}-{actor}-{ms}", kind, cid, actor, ms, deltas, None, data)


def test_fold() -> None:
    events = [
        ev(VIEW, START),
        ev(VIEW, START + 59_999, "d:2"),
        ev(VIEW, START + 60_000, "d:3"),
        ev(REACTION, START + 1, "alice", before=None, after="LIKE"),
        ev(REACTION, START + 2, "bob", before="LIKE", after="LOVE"),  # a switch
        ev(REACTION, START + 3, "carol", before="LIKE", after=None),  # an unlike
        ev(RAW_VIEW, START, "d:2", accepted_ms=1500),
        ev(RAW_VIEW, START, "d:2", accepted_ms=0),  # flagged impossible
        ev(RAW_VIEW, START, "d:9", cid="c2", accepted_ms=700),
        ev(VIEW, START, cid="c3"),
    ]
    out = fold(events)
    c1 = out["c1"]
    assert c1.minutes == {M: [2, 1], M + 1: [1, 0]}
    assert c1.reactors == {"u:alice", "u:bob"}
    assert c1.watch_ms == 1500
    assert (out["c2"].minutes, out["c2"].watch_ms, out["c2"].reactors) == ({}, 700, None)
    assert out["c3"].minutes == {M: [1, 0]}


def test_fold_counts_what_the_public_counts_count() -> None:
    excluded_like = EngagementEvent(
        "r-x", REACTION, "c1", "bot", START, {"x_likes": 1}, None, {"before": None, "after": "LIKE"}
    )
    excluded_view = EngagementEvent("v-x", VIEW, "c1", "d:bot", START, {"x_views": 1}, None, {})
    # An exclusion, later, takes a like and a view back from the minute they counted in.
    exclusion = EngagementEvent(
        "i-1",
        INTEGRITY,
        "c1",
        "alice",
        START + 600_000,
        {"likes": -1, "r:LIKE": -1, "x_likes": 1, "views": -1, "x_views": 1},
        None,
        {"original_at_ms": START + 60_000},
    )
    out = fold([excluded_like, excluded_view, exclusion])
    assert out["c1"].minutes == {M + 1: [-1, -1]}
    assert out["c1"].reactors is None


@pytest.mark.parametrize("seed", range(40))
def test_compute_takes_the_windows_window_sum_defines(seed: int) -> None:
    """compute's per-minute arithmetic against window_sum, the definition, on random
    minutes and random moments (minute starts included)."""
    import random

    rng = random.Random(seed)
    now = START + rng.choice([0, 1, 30_000, 59_999, rng.randrange(60_000)])
    current = now // 60_000
    minutes = {
        current - k: Minute(views=rng.randrange(0, 50), likes=rng.randrange(0, 5))
        for k in range(-2, 80)
        if rng.random() < 0.7
    }
    got = compute("c", raw(minutes=minutes), now)
    views = {m: c.views for m, c in minutes.items()}
    likes = {m: c.likes for m, c in minutes.items()}
    for name, counts in (("views_per_minute", views), ("likes_per_minute", likes)):
        r = getattr(got, name)
        assert r.one_minute == pytest.approx(window_sum(counts, now, 0, 1))
        assert r.fifteen_minutes == pytest.approx(window_sum(counts, now, 0, 15) / 15)
        assert r.one_hour == pytest.approx(window_sum(counts, now, 0, 60) / 60)
    recent = window_sum(views, now, 0, 5) / 5
    baseline = window_sum(views, now, 5, 65) / 60
    assert got.velocity_ratio == (pytest.approx(recent / baseline) if baseline else None)
    expected_slope = slope([float(views.get(m, 0)) for m in range(current - 15, current)])
    assert got.growth_slope == pytest.approx(expected_slope)


@pytest.mark.parametrize(
    ("minutes", "now", "views_at", "slope_sum"),
    [
        # Ages 0 (the current minute), 1 and 5: prefix sums at CUTS (1, 2, 5, 6, 15,
        # 16, 60, 61, 65, 66); the slope weighs age a by 8 - a.
        ({M: 6, M - 1: 4, M - 5: 2}, HALF, (6, 10, 10, 12, 12, 12, 12, 12, 12, 12), 7 * 4 + 3 * 2),
        # At a minute's first ms the current minute counts nothing yet.
        ({M: 6, M - 1: 4}, START, (0, 4, 4, 4, 4, 4, 4, 4, 4, 4), 7 * 4),
        # A future minute, and minutes past the span (66 and older), count nothing.
        ({M + 1: 9, M - 66: 5, M - 65: 3}, HALF, (0,) * 9 + (3,), 0),
        # Age 15 weighs -7, the oldest minute of the slope.
        ({M - 15: 1, M - 60: 2}, HALF, (0,) * 4 + (0, 1, 1, 3, 3, 3), -7),
    ],
)
def test_sums_by_hand(
    minutes: dict[int, int], now: int, views_at: tuple[int, ...], slope_sum: int
) -> None:
    got = sums(raw(minutes={m: Minute(views=v, likes=2 * v) for m, v in minutes.items()}), now)
    assert got.ring[0] == slope_sum
    assert got.ring[1 : 1 + len(CUTS)] == views_at
    assert got.ring[1 + len(CUTS) :] == tuple(2 * v for v in views_at)


def test_the_graphql_types_read_their_fields_off_the_domain_objects() -> None:
    from strawberry.types.base import get_object_definition

    from schema.ranking import RankingSignals
    from schema.ranking import Rates as GraphQLRates

    s = compute("c1", raw(updated_at_ms=START), START + 1)
    for field in get_object_definition(RankingSignals, strict=True).fields:
        assert hasattr(s, field.python_name), field.python_name
    for field in get_object_definition(GraphQLRates, strict=True).fields:
        assert hasattr(s.likes_per_minute, field.python_name), field.python_name
    assert s.updated_at is not None and s.updated_at.timestamp() * 1000 == START
    assert RankingSignals.from_domain(s) is s
