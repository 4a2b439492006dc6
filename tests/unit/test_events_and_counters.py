import pytest

from domain.counters import add, drift
from domain.events import EngagementEvent, reaction_event_id


def ev(eid, cid, **deltas):
    return EngagementEvent(eid, "reaction", cid, "u", 1, deltas)


@pytest.mark.parametrize(
    ("args", "same"),
    [
        (("c", "u", 1), True),
        (("c", "u", 2), False),
        (("c", "v", 1), False),
        (("d", "u", 1), False),
    ],
)
def test_reaction_event_id_is_deterministic(args, same):
    assert (reaction_event_id(*args) == reaction_event_id("c", "u", 1)) is same


@pytest.mark.parametrize(
    ("counters", "deltas", "expected"),
    [
        ({}, {"likes": 1}, {"likes": 1}),
        ({"likes": 1}, {"likes": -1}, {"likes": 0}),
        ({"likes": 0}, {"likes": -1}, {"likes": 0}),
        (
            {"likes": 2, "r:LIKE": 2},
            {"r:LIKE": -1, "r:WOW": 1},
            {"likes": 2, "r:LIKE": 1, "r:WOW": 1},
        ),
    ],
)
def test_add_never_below_zero(counters, deltas, expected):
    assert add(counters, deltas) == expected


def test_drift_lists_only_differences():
    assert drift({"likes": 3, "r:LIKE": 3}, {"likes": 2, "r:LIKE": 3, "views": 1}) == {
        "likes": (3, 2),
        "views": (0, 1),
    }


def test_event_roundtrip():
    e = EngagementEvent("x", "view", "c", "u", 5, {"views": 1}, "u:1", {"k": "v"})
    assert EngagementEvent.from_dict(e.to_dict()) == e
