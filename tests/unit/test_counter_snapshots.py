"""The pure parts of counter snapshots: which events a capture holds, the watermark,
the counters at it, and the fold of a snapshot with the events after it."""

from __future__ import annotations

import pytest

from domain.counter_snapshots import (
    counters_at,
    fold,
    included_ids,
    unique_events,
    usable,
    watermark,
)
from domain.events import EngagementEvent
from domain.ports import CounterSnapshot


def ev(eid: str, at: int, unique: str | None = None, **deltas: int) -> EngagementEvent:
    return EngagementEvent(eid, "reaction", "c", "u", at, deltas, unique)


A = ev("a", 100, likes=1)
B = ev("b", 200, likes=1)
C = ev("c", 300, likes=-1)
D = ev("d", 400, "v:1", views=1)


@pytest.mark.parametrize(
    ("events", "asof", "applied", "want"),
    [
        ([A, B, C], 0, frozenset(), set()),
        ([A, B, C], 0, frozenset({"b"}), {"b"}),
        # No later than the counters' recount: included whether applied or not.
        ([A, B, C], 200, frozenset(), {"a", "b"}),
        ([A, B, C], 200, frozenset({"c"}), {"a", "b", "c"}),
        ([], 500, frozenset({"x"}), set()),
    ],
)
def test_included_ids(events, asof, applied, want):
    assert included_ids(events, asof, applied) == want


@pytest.mark.parametrize(
    ("candidate", "low", "asof", "events", "included", "want"),
    [
        # Everything read is included: W stays at the candidate.
        (250, 50, 0, [A, B, C], {"a", "b", "c"}, 250),
        # A later recount moves W up to it.
        (250, 50, 350, [A, B, C], {"a", "b", "c"}, 350),
        # Not applied yet, before the candidate: W goes just below it.
        (250, 50, 0, [A, B, C], {"a"}, 199),
        (250, 50, 0, [A, B, C], {"b"}, 99),
        # Not applied, but after the candidate: no matter, it is after W.
        (250, 50, 0, [A, B, C], {"a", "b"}, 250),
        # Never below the events read.
        (250, 100, 0, [A, B], set(), 100),
        (250, 50, 0, [], set(), 250),
    ],
)
def test_watermark(candidate, low, asof, events, included, want):
    assert watermark(candidate, low, asof, events, included) == want


@pytest.mark.parametrize(
    ("counters", "events", "included", "w", "want"),
    [
        ({"likes": 5}, [A, B, C], {"a", "b", "c"}, 150, {"likes": 5 - 1 + 1}),
        ({"likes": 5}, [A, B, C], {"a", "b"}, 150, {"likes": 4}),
        ({"likes": 5}, [A, B, C], {"a", "b", "c"}, 300, {"likes": 5}),
        ({"likes": 5, "views": 2}, [D], {"d"}, 0, {"likes": 5, "views": 1}),
        # An event read twice (outbox and archive) is taken out once.
        ({"likes": 5}, [B, B], {"b"}, 150, {"likes": 4}),
    ],
)
def test_counters_at(counters, events, included, w, want):
    assert counters_at(counters, events, included, w) == want


def snap(w: int, **counters: int) -> CounterSnapshot:
    return CounterSnapshot("c", counters, b"", w, w + 1000)


@pytest.mark.parametrize(
    ("snapshot", "events", "want"),
    [
        (snap(150, likes=1), [A, B, C, D], ({"likes": 1, "views": 1}, ["v:1"])),
        (snap(0), [A, B], ({"likes": 2}, [])),
        (snap(500, likes=3), [A, B, C, D], ({"likes": 3}, [])),
        # Each event once, and each member once.
        (snap(150), [B, B, D, ev("e", 450, "v:1", views=1)], ({"likes": 1, "views": 2}, ["v:1"])),
    ],
)
def test_fold(snapshot, events, want):
    assert fold(snapshot, events) == want


@pytest.mark.parametrize(
    ("w", "now", "horizon", "want"),
    [
        (0, 10**12, None, True),
        (9_000, 10_000, 2_000, True),
        (8_000, 10_000, 2_000, False),
        (7_000, 10_000, 2_000, False),
    ],
)
def test_usable(w, now, horizon, want):
    assert usable(snap(w), now, horizon) is want


@pytest.mark.parametrize(
    ("registers", "want"),
    [(b"", True), (b"HYLL\x01\x00", True), (b"not a sketch", False)],
)
def test_usable_needs_registers_redis_takes(registers, want):
    snapshot = CounterSnapshot("c", {}, registers, 9_000, 9_500)
    assert usable(snapshot, 10_000, None) is want


def test_unique_events_keeps_the_first_of_each_id():
    assert unique_events([A, B, A, ev("b", 999)]) == [A, B]
