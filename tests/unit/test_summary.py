"""summarize: counters as stored -> the summary clients see."""

from __future__ import annotations

import pytest

from domain.integrity import IntegrityCounts
from domain.reactions import ReactionType as R
from domain.summary import ReactionCount as C
from domain.summary import Summary, summarize


def S(*fields: object) -> Summary:
    """A summary as summarize gives it for counters no doubtful or suspect actor
    touched: all trusted when there is anything to trust."""
    summary = Summary(*fields)  # type: ignore[arg-type]
    share = 1.0 if summary.likes or summary.views else None
    return Summary(*fields, IntegrityCounts(0, 0, share))  # type: ignore[arg-type, call-arg]


@pytest.mark.parametrize(
    ("counters", "unique", "viewer", "expected"),
    [
        ({}, 0, None, S("c", 0, (), 0, 0, None)),
        (
            {"likes": 3, "r:WOW": 1, "r:LIKE": 2, "views": 9},
            4,
            R.LIKE,
            # reactions in the enum's order, not the hash's
            S("c", 3, (C(R.LIKE, 2), C(R.WOW, 1)), 9, 4, R.LIKE),
        ),
        # a count at or below zero (a race with a recount) is not shown
        ({"likes": -1, "r:LIKE": 0, "r:SAD": -2}, 0, None, S("c", 0, (), 0, 0, None)),
        ({"views": -5}, 3, None, S("c", 0, (), 0, 0, None)),
        # the HyperLogLog estimate never exceeds counted views
        ({"views": 10}, 12, None, S("c", 0, (), 10, 10, None)),
        ({"views": 10}, -1, None, S("c", 0, (), 10, 0, None)),
        # unknown and bookkeeping fields are ignored
        ({"likes": 1, "r:NOPE": 5, "_asof": 7}, 0, None, S("c", 1, (), 0, 0, None)),
        (
            {f"r:{r.value}": i + 1 for i, r in enumerate(R)} | {"likes": 21},
            0,
            R.ANGRY,
            S("c", 21, tuple(C(r, i + 1) for i, r in enumerate(R)), 0, 0, R.ANGRY),
        ),
    ],
)
def test_summarize(counters, unique, viewer, expected):
    assert summarize("c", counters, unique, viewer) == expected


def test_unique_viewers_default_to_zero():
    assert summarize("c", {"views": 5}) == S("c", 0, (), 5, 0, None)


@pytest.mark.parametrize(
    ("counters", "unique", "expected"),
    [
        # one of each: a single view or like is shown, not rounded away
        ({"views": 1, "likes": 1, "r:LIKE": 1}, 1, S("c", 1, (C(R.LIKE, 1),), 1, 1, None)),
        ({"views": 0}, 0, S("c", 0, (), 0, 0, None)),
        ({"views": 7}, 7, S("c", 0, (), 7, 7, None)),
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
            "integrity": [0, 0, None],
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
            "integrity": [0, 0, None],
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
            "integrity": [0, 0, None],
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
    from schema.integrity import CountIntegrity

    for field in get_object_definition(CountIntegrity, strict=True).fields:
        assert hasattr(s.integrity, field.python_name), field.python_name


@pytest.mark.parametrize(
    ("counters", "expected"),
    [
        ({}, IntegrityCounts(0, 0, None)),
        ({"likes": 4, "views": 6}, IntegrityCounts(0, 0, 1.0)),
        # Excluded actors: out of the public count, in the suspect counts.
        ({"likes": 1, "x_likes": 7, "x_views": 3}, IntegrityCounts(7, 3, 1.0)),
        ({"x_likes": 2}, IntegrityCounts(2, 0, None)),
        # Doubtful actors: in the public count, not in the trusted share.
        ({"likes": 4, "views": 6, "d_likes": 1, "d_views": 2}, IntegrityCounts(0, 0, 0.7)),
        ({"likes": 2, "d_likes": 2}, IntegrityCounts(0, 0, 0.0)),
        # A race with a recount never shows a share outside [0, 1] or a negative count.
        ({"likes": 1, "d_likes": 3, "x_likes": -1}, IntegrityCounts(0, 0, 0.0)),
        ({"likes": 2, "d_likes": -1}, IntegrityCounts(0, 0, 1.0)),
    ],
)
def test_integrity_of_a_count(counters, expected):
    got = summarize("c", counters).integrity
    assert got.suspect_likes == expected.suspect_likes
    assert got.suspect_views == expected.suspect_views
    assert got.trusted_share == pytest.approx(expected.trusted_share)


def test_integrity_survives_the_replay_round_trip():
    s = summarize("c", {"likes": 4, "views": 6, "d_likes": 1, "x_views": 5})
    assert Summary.from_dict(s.to_dict()) == s
