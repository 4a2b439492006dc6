"""The viewer's own events in a live snapshot (read-your-writes)."""

from __future__ import annotations

import pytest

from domain.events import REACTION, EngagementEvent
from domain.ports import CounterReading
from domain.snapshots import with_own_events


def event(eid: str, at: int, **deltas: int) -> EngagementEvent:
    return EngagementEvent(eid, REACTION, "c", "u", at, deltas)


LOVE = event("e1", 100, likes=1, **{"r:LOVE": 1})
SWITCH = event("e2", 200, **{"r:LOVE": -1, "r:LAUGH": 1})


@pytest.mark.parametrize(
    ("reading", "own", "expected", "added"),
    [
        pytest.param(CounterReading({}, 0), (), {}, False, id="no-own-events"),
        pytest.param(
            CounterReading({}, 0), (LOVE,), {"likes": 1, "r:LOVE": 1}, True, id="unapplied"
        ),
        pytest.param(
            CounterReading({"likes": 1, "r:LOVE": 1}, 0, frozenset({"e1"})),
            (LOVE,),
            {"likes": 1, "r:LOVE": 1},
            False,
            id="applied",
        ),
        pytest.param(
            CounterReading({"likes": 1, "r:LOVE": 1}, 0, asof_ms=100),
            (LOVE,),
            {"likes": 1, "r:LOVE": 1},
            False,
            id="in-the-recount",
        ),
        pytest.param(
            CounterReading({"likes": 1, "r:LOVE": 1}, 0, frozenset({"e1"})),
            (LOVE, SWITCH),
            {"likes": 1, "r:LOVE": 0, "r:LAUGH": 1},
            True,
            id="first-applied-second-not",
        ),
        pytest.param(
            CounterReading({"likes": 1, "r:LAUGH": 1}, 0, frozenset({"e1", "e2"})),
            (LOVE, SWITCH),
            {"likes": 1, "r:LAUGH": 1},
            False,
            id="both-applied",
        ),
    ],
)
def test_with_own_events(
    reading: CounterReading,
    own: tuple[EngagementEvent, ...],
    expected: dict[str, int],
    added: bool,
) -> None:
    assert with_own_events(reading, own) == (expected, added)
