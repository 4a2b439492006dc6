"""summarize: counters as stored -> the summary clients see."""

from __future__ import annotations

import pytest

from domain.reactions import ReactionType as R
from domain.summary import ReactionCount as C
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
            Summary("c", 3, (C(R.LIKE, 2), C(R.WOW, 1)), 9, 4, R.LIKE),
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
            Summary("c", 21, tuple(C(r, i + 1) for i, r in enumerate(R)), 0, 0, R.ANGRY),
        ),
    ],
)
def test_summarize(counters, unique, viewer, expected):
    assert summarize("c", counters, unique, viewer) == expected


def test_unique_viewers_default_to_zero():
    assert summarize("c", {"views": 5}) == Summary("c", 0, (), 5, 0, None)


@pytest.mark.parametrize(
    ("counters", "unique", "expected"),
    [
        # one of each: a single view or like is shown, not rounded away
        ({"views": 1, "likes": 1, "r:LIKE": 1}, 1, Summary("c", 1, (C(R.LIKE, 1),), 1, 1, None)),
        ({"views": 0}, 0, Summary("c", 0, (), 0, 0, None)),
        ({"views": 7}, 7, Summary("c", 0, (), 7, 7, None)),
    ],
    ids=["ones", "zeros", "estimate-equals-views"],
)
def test_summarize_at_the_boundaries(counters, unique, expected):
    assert summarize("c", counters, unique) == expected


# Idempotent replays store a result with to_dict and answer with from_dict, possibly
# from another release: the stored form is pinned, and the round trip is exact.
ROUND_TRIP = [
    (
        Summary("c1", 3, (C(R.LIKE, 2), C(R.WOW, 1)), 9, 4, R.LIKE),
        {
            "content_id": "c1",
            "likes": 3,
            "reactions": [["LIKE", 2], ["WOW", 1]],
            "views": 9,
            "unique_viewers": 4,
            "viewer_reaction": "LIKE",
        },
    ),
    (
        Summary("c2", 0, (), 0, 0, None),
        {
            "content_id": "c2",
            "likes": 0,
            "reactions": [],
            "views": 0,
            "unique_viewers": 0,
            "viewer_reaction": None,
        },
    ),
    (
        Summary("c3", 21, tuple(C(r, i + 1) for i, r in enumerate(R)), 5, 2, R.ANGRY),
        {
            "content_id": "c3",
            "likes": 21,
            "reactions": [[r.value, i + 1] for i, r in enumerate(R)],
            "views": 5,
            "unique_viewers": 2,
            "viewer_reaction": "ANGRY",
        },
    ),
]


@pytest.mark.parametrize(("summary", "stored"), ROUND_TRIP, ids=["reacted", "empty", "every-type"])
def test_to_dict_from_dict_round_trip(summary, stored):
    assert summary.to_dict() == stored
    back = Summary.from_dict(stored)
    assert back == summary
    assert all(isinstance(r, R) for r, _ in back.reactions)
    assert back.viewer_reaction is summary.viewer_reaction


def test_from_dict_reads_what_a_json_store_gives_back():
    # A JSON round trip turns tuples into lists and may leave numbers as strings
    # or floats; an older record may not have viewer_reaction at all.
    raw = {
        "content_id": "c1",
        "likes": "3",
        "reactions": [("LOVE", "2"), ["SAD", 1.0]],
        "views": 9.0,
        "unique_viewers": "4",
    }
    back = Summary.from_dict(raw)
    assert back == Summary("c1", 3, (C(R.LOVE, 2), C(R.SAD, 1)), 9, 4, None)
    assert all(type(n) is int for _, n in back.reactions)
    assert [type(v) for v in (back.likes, back.views, back.unique_viewers)] == [int] * 3


@pytest.mark.parametrize("viewer", [None, R.LIKE, R.SAD])
@pytest.mark.parametrize("before", [None, R.LOVE])
def test_for_viewer_changes_only_the_viewer_reaction(before, viewer):
    shared = Summary("c1", 3, (C(R.LIKE, 2), C(R.LOVE, 1)), 9, 4, before)
    assert shared.for_viewer(viewer) == Summary("c1", 3, (C(R.LIKE, 2), C(R.LOVE, 1)), 9, 4, viewer)


def test_the_graphql_types_read_their_fields_off_the_domain_objects() -> None:
    # EngagementSummary.from_domain hands the domain Summary to GraphQL as is:
    # every field of the GraphQL types must be there under its Python name.
    from strawberry.types.base import get_object_definition

    from domain.summary import ReactionCount as DomainCount
    from schema.engagement import EngagementSummary, ReactionCount

    s = summarize("c1", {"likes": 3, "r:LOVE": 2, "r:WOW": 1, "views": 9}, 4, R.LOVE)
    for field in get_object_definition(EngagementSummary, strict=True).fields:
        assert hasattr(s, field.python_name), field.python_name
    for field in get_object_definition(ReactionCount, strict=True).fields:
        assert field.python_name in DomainCount._fields
    assert s.reactions == (DomainCount(R.LOVE, 2), DomainCount(R.WOW, 1))
    assert s.reactions[0].reaction is R.LOVE and s.reactions[0].count == 2
    assert EngagementSummary.from_domain(s) is s
