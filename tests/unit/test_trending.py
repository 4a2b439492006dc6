"""Trending (domain/trending.py), pure: weights, heat by hand, decayed sums that
merge in any order, the frame score's round trip, ranking ties and set keys."""

from __future__ import annotations

import math
from typing import Any

import pytest

from domain.events import INTEGRITY, RAW_VIEW, REACTION, VIEW, VIEW_END, EngagementEvent
from domain.trending import (
    ALL_KINDS,
    ALL_REGIONS,
    MIN_HEAT,
    WINDOWS,
    Ranked,
    SetKey,
    State,
    StateKey,
    TrendWindow,
    advance,
    brute_force,
    current_heat,
    fold,
    frame_score,
    heat,
    moment,
    prune_below,
    rank,
    region_of,
    set_keys,
    weight,
)
from tests.unit.public_deltas import deltas_of

T = 1_790_000_000_000


FIVE = WINDOWS[TrendWindow.FIVE_MINUTES]
HOUR = WINDOWS[TrendWindow.HOUR]
DAY = WINDOWS[TrendWindow.DAY]


def event(
    kind: str,
    ms: int = T,
    cid: str = "c1",
    eid: str | None = None,
    deltas: dict[str, int] | None = None,
    **data: Any,
) -> EngagementEvent:
    if deltas is None:
        deltas = deltas_of(kind, data)
    return EngagementEvent(eid or f"{kind}-{cid}-{ms}", kind, cid, "u1", ms, deltas, None, data)


@pytest.mark.parametrize(
    ("e", "expected"),
    [
        (event(VIEW), 1.0),
        # An excluded actor's engagement is out of the public counts: it weighs nothing.
        (event(VIEW, deltas={"x_views": 1}), 0.0),
        (event(REACTION, deltas={"x_likes": 1}, before=None, after="LIKE"), 0.0),
        # A doubtful one's is in them.
        (event(REACTION, deltas={"likes": 1, "r:LIKE": 1, "d_likes": 1}), 5.0),
        # An exclusion takes back a like and a view; a restoration gives them back.
        (event(INTEGRITY, deltas={"likes": -1, "r:LIKE": -1, "x_likes": 1}), -5.0),
        (event(INTEGRITY, deltas={"views": -1, "x_views": 1}), -1.0),
        (event(INTEGRITY, deltas={"views": 1, "x_views": -1}), 1.0),
        (event(REACTION, before=None, after="LIKE"), 5.0),
        (event(REACTION, before=None, after="LOVE"), 5.0),
        (event(REACTION, before="LIKE", after=None), -5.0),
        (event(REACTION, before="LIKE", after="LOVE"), 0.0),
        (event(REACTION), 0.0),  # no before/after: nothing changed
        (event(RAW_VIEW, accepted_ms=1000), 0.0),
        (event(VIEW_END), 0.0),
    ],
)
def test_weight(e: EngagementEvent, expected: float) -> None:
    assert weight(e) == expected


def test_an_exclusion_weighs_at_the_time_of_what_it_takes_back() -> None:
    like = event(REACTION, T, before=None, after="LIKE")
    exclusion = event(
        INTEGRITY, T + 3_600_000, deltas={"likes": -1, "r:LIKE": -1}, original_at_ms=T
    )
    assert moment(exclusion) == T
    states = fold([like, exclusion])
    # The like and its exclusion cancel exactly: nothing is left to trend.
    assert all(s.recent == 0.0 and s.baseline == 0.0 for s in states.values())


@pytest.mark.parametrize(
    ("recent", "baseline", "spec", "expected"),
    [
        # expected = baseline * 300 / 3600 = baseline / 12 (FIVE_MINUTES)
        (10.0, 0.0, FIVE, 10.0),  # 10² / max(0, PRIOR 10)
        (20.0, 120.0, FIVE, 10.0),  # expected 10: 10² / 10
        (300.0, 2400.0, FIVE, 50.0),  # expected 200: 100² / 200
        (5.0, 120.0, FIVE, 0.0),  # under the expected
        (10.0, 120.0, FIVE, 0.0),  # exactly the expected
        (-5.0, 0.0, FIVE, 0.0),  # unlikes only
        # A baseline below zero (unlikes) expects nothing, not less than nothing:
        (3.0, -12.0, FIVE, 0.9),  # expected max(-1, 0) = 0: 3² / 10
        (3.0, -1200.0, FIVE, 0.9),
        # expected = baseline / 24 (HOUR), = baseline / 7 (DAY)
        (30.0, 240.0, HOUR, 40.0),  # expected 10: 20² / 10
        (160.0, 700.0, DAY, 36.0),  # expected 100: 60² / 100
    ],
)
def test_heat(recent: float, baseline: float, spec: Any, expected: float) -> None:
    assert heat(recent, baseline, spec) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("US", "US"),
        ("GB", "GB"),
        (None, "unknown"),
        ("unknown", "unknown"),
        ("all", "unknown"),  # never the all-regions set
        ("us", "unknown"),
        ("USA", "unknown"),
        ("U:S", "unknown"),
        (7, "unknown"),
    ],
)
def test_region_of(region: object, expected: str) -> None:
    assert region_of(event(VIEW, region=region)) == expected


def like(cid: str, ms: int, user: str, region: str | None = "US") -> EngagementEvent:
    return EngagementEvent(
        f"r-{cid}-{user}-{ms}",
        REACTION,
        cid,
        user,
        ms,
        {"likes": 1},
        None,
        {"before": None, "after": "LIKE", "region": region},
    )


def view(cid: str, ms: int, viewer: str, region: str | None = "US") -> EngagementEvent:
    return EngagementEvent(
        f"v-{cid}-{viewer}-{ms}", VIEW, cid, viewer, ms, {"views": 1}, viewer, {"region": region}
    )


BATCH_A = [view("c1", T + i * 7_000, f"a{i}") for i in range(10)] + [like("c1", T + 5_000, "x")]
BATCH_B = [view("c1", T + 30_000 + i * 11_000, f"b{i}") for i in range(6)] + [
    like("c1", T + 90_000, "y", "FR")
]


@pytest.mark.parametrize("window", list(TrendWindow))
@pytest.mark.parametrize("region", ["US", ALL_REGIONS])
def test_advance_in_either_order_equals_one_fold(window: TrendWindow, region: str) -> None:
    spec = WINDOWS[window]
    key = StateKey("c1", window, region)
    a, b = fold(BATCH_A)[key], fold(BATCH_B)[key]
    whole = fold(BATCH_A + BATCH_B)[key]
    for first, second in ((a, b), (b, a)):
        got = advance(advance(None, first, spec), second, spec)
        assert got.t_ms == whole.t_ms
        assert got.recent == pytest.approx(whole.recent, rel=1e-12)
        assert got.baseline == pytest.approx(whole.baseline, rel=1e-12)


def test_advance_decays_the_older_into_the_newer() -> None:
    spec = FIVE
    newer, older = State(2.0, 3.0, T + 300_000), State(1.0, 1.0, T)
    got = advance(newer, older, spec)
    assert got == advance(older, newer, spec)
    assert got.t_ms == T + 300_000
    assert got.recent == pytest.approx(2.0 + math.exp(-1.0))
    assert got.baseline == pytest.approx(3.0 + math.exp(-300 / 3600))
    assert advance(None, older, spec) == older


def test_fold_keeps_regions_and_their_sum() -> None:
    states = fold([like("c1", T, "u", "US"), view("c1", T, "v", None), view("c2", T, "w")])
    assert states[StateKey("c1", TrendWindow.HOUR, "US")] == State(5.0, 5.0, T)
    assert states[StateKey("c1", TrendWindow.HOUR, "unknown")] == State(1.0, 1.0, T)
    assert states[StateKey("c1", TrendWindow.HOUR, ALL_REGIONS)] == State(6.0, 6.0, T)
    assert len(states) == 3 * 5  # (c1: US, unknown, all; c2: US, all) x 3 windows


class Flagged:
    def trust(self, event: EngagementEvent) -> float:
        return 0.5 if event.actor == "half" else 1.0

    def excluded(self, content_id: str) -> bool:
        return content_id == "bad"


def test_fold_through_the_integrity_seam() -> None:
    states = fold([like("c1", T, "half"), view("bad", T, "v"), view("c1", T, "v")], Flagged())
    assert states[StateKey("c1", TrendWindow.DAY, ALL_REGIONS)] == State(3.5, 3.5, T)
    assert not any(k.content_id == "bad" for k in states)


@pytest.mark.parametrize("spec", list(WINDOWS.values()))
@pytest.mark.parametrize("h", [1e-3, 0.5, 1.0, 42.0, 1e6])
def test_frame_score_round_trip_and_decay(spec: Any, h: float) -> None:
    t = T + 123_456
    frame = frame_score(h, t, spec)
    assert current_heat(frame, t, spec) == pytest.approx(h, rel=1e-9)
    later = current_heat(frame, t + 60_000, spec)
    assert later == pytest.approx(h * math.exp(-spec.decay_per_s * 60), rel=1e-9)


@pytest.mark.parametrize("spec", list(WINDOWS.values()))
def test_prune_below_is_min_heat_now(spec: Any) -> None:
    assert current_heat(prune_below(T, spec), T, spec) == pytest.approx(MIN_HEAT, rel=1e-9)


@pytest.mark.parametrize(
    ("scores", "first", "expected"),
    [
        ({"b": 1.0, "a": 1.0, "c": 2.0}, 2, ["c", "a"]),
        ({"b": 1.0, "a": 1.0, "c": 2.0}, 5, ["c", "a", "b"]),
        ({"x": -3.0, "y": 4.0}, 1, ["y"]),
        ({}, 3, []),
    ],
)
def test_rank_breaks_ties_by_id(scores: dict[str, float], first: int, expected: list[str]) -> None:
    ranked = rank(scores, first)
    assert [r.content_id for r in ranked] == expected
    assert all(r == Ranked(r.content_id, scores[r.content_id]) for r in ranked)


@pytest.mark.parametrize(
    ("window", "kind", "region", "expected"),
    [
        (
            TrendWindow.HOUR,
            "VIDEO",
            "US",
            (SetKey(TrendWindow.HOUR, "VIDEO", "US"), SetKey(TrendWindow.HOUR, ALL_KINDS, "US")),
        ),
        (
            TrendWindow.DAY,
            "POST",
            ALL_REGIONS,
            (SetKey(TrendWindow.DAY, "POST", "all"), SetKey(TrendWindow.DAY, "ALL", "all")),
        ),
    ],
)
def test_set_keys(
    window: TrendWindow, kind: str, region: str, expected: tuple[SetKey, ...]
) -> None:
    assert set_keys(window, kind, region) == expected


def test_brute_force_scores_hot_contents_of_known_kinds_only() -> None:
    events = [like("c1", T, "u"), like("c2", T, "u"), view("c3", T, "v")]
    out = brute_force(events, {"c1": "VIDEO", "c3": "POST"})
    sets = out[SetKey(TrendWindow.FIVE_MINUTES, ALL_KINDS, ALL_REGIONS)]
    # c1: recent 5, baseline 5, expected 5/12: (5 - 5/12)² / 10; c3: one view, heat
    # (1 - 1/12)² / 10; c2 has no kind.
    assert set(sets) == {"c1", "c3"}
    assert current_heat(sets["c1"], T, FIVE) == pytest.approx((5 - 5 / 12) ** 2 / 10)
    assert current_heat(sets["c3"], T, FIVE) == pytest.approx((1 - 1 / 12) ** 2 / 10)
    assert SetKey(TrendWindow.FIVE_MINUTES, "VIDEO", "US") in out
