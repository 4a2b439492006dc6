"""summarize: counters as stored -> the summary clients see."""

from __future__ import annotations

import pytest

from domain.reactions import ReactionType as R
from domain.summary import Summary, summarize


@pytest.mark.parametrize(
    ("counters", "unique", "viewer", "expected"),
    [
        ({}, 0, None, Summary("c", 0, (), 0, 0, None)),
        (
            {"likes": 3, "r:WOW": 1, "r:LIKE": 2, "views": 9},
            4,
            R.LIKE,
            # reactions in the enum's order, not the hash's
            Summary("c", 3, ((R.LIKE, 2), (R.WOW, 1)), 9, 4, R.LIKE),
        ),
        # a count at or below zero (a race with a recount) is not shown
        ({"likes": -1, "r:LIKE": 0, "r:SAD": -2}, 0, None, Summary("c", 0, (), 0, 0, None)),
        ({"views": -5}, 3, None, Summary("c", 0, (), 0, 0, None)),
        # the HyperLogLog estimate never exceeds counted views
        ({"views": 10}, 12, None, Summary("c", 0, (), 10, 10, None)),
        ({"views": 10}, -1, None, Summary("c", 0, (), 10, 0, None)),
        # unknown and bookkeeping fields are ignored
        ({"likes": 1, "r:NOPE": 5, "_asof": 7}, 0, None, Summary("c", 1, (), 0, 0, None)),
        (
            {f"r:{r.value}": i + 1 for i, r in enumerate(R)} | {"likes": 21},
            0,
            R.ANGRY,
            Summary("c", 21, tuple((r, i + 1) for i, r in enumerate(R)), 0, 0, R.ANGRY),
        ),
    ],
)
def test_summarize(counters, unique, viewer, expected):
    assert summarize("c", counters, unique, viewer) == expected
