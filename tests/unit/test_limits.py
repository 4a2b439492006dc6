"""Document limits (schema.limits): linear in the document, whatever its spreads.

The hostile shapes are run at sizes where the old, exponential rules would
spin for minutes; ``pytest.mark.timeout`` ends such a regression in seconds.
"""

from __future__ import annotations

import pytest
from graphql import get_introspection_query, parse

from schema.limits import DocumentLimits, Limits
from schema.root import LIST_BOUNDS, build_schema

SCHEMA = build_schema()
CHECK = DocumentLimits(SCHEMA._schema, Limits(), LIST_BOUNDS)


def doubled_spreads(levels: int) -> str:
    """Each fragment spreads the previous one twice: 2^levels spreads when expanded."""
    frags = ["fragment Q0 on EngagementSummary { likes }"]
    frags += [
        f"fragment Q{i} on EngagementSummary {{ ...Q{i - 1} ...Q{i - 1} }}"
        for i in range(1, levels + 1)
    ]
    return f'{{ engagementSummary(contentId: "c1") {{ ...Q{levels} }} }}\n' + "\n".join(frags)


def doubled_aliases(levels: int) -> str:
    """The introspection shape: two aliased ofType per level, 2^levels aliases."""
    frags = ["fragment T0 on __Type { name }"]
    frags += [
        f"fragment T{i} on __Type {{ a: ofType {{ ...T{i - 1} }} b: ofType {{ ...T{i - 1} }} }}"
        for i in range(1, levels + 1)
    ]
    return f"{{ __schema {{ types {{ ...T{levels} }} }} }}\n" + "\n".join(frags)


def doubled_aliases_flat(levels: int) -> str:
    """Aliases doubled without nesting: depth stays 1, only the alias count grows."""
    frags = ['fragment A0 on Query { a: engagementSummary(contentId: "x") { likes } }']
    frags += [f"fragment A{i} on Query {{ ...A{i - 1} ...A{i - 1} }}" for i in range(1, levels + 1)]
    return f"{{ ...A{levels} }}\n" + "\n".join(frags)


def fragment_chain(length: int) -> str:
    frags = [f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(length)]
    frags.append(f'fragment F{length} on Query {{ engagementSummary(contentId: "x") {{ likes }} }}')
    return "{ ...F0 }\n" + "\n".join(frags)


def fragment_cycle(length: int) -> str:
    frags = [f"fragment F{i} on Query {{ ...F{(i + 1) % length} }}" for i in range(length)]
    return "{ ...F0 }\n" + "\n".join(frags)


def reactor_pages(pages: int, first: int) -> str:
    fields = " ".join(
        f'a{i}: reactors(contentId: "x", first: {first}) '
        "{ edges { node { userId reaction reactedAt } } }"
        for i in range(pages)
    )
    return f"{{ {fields} }}"


def repeated(n: int) -> str:
    return '{ engagementSummary(contentId: "x") { ' + "likes " * n + "} }"


def aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"


def nested(depth: int) -> str:
    """depth levels of fields with a selection, through the introspection types."""
    inner = "name"
    for _ in range(depth - 1):
        inner = f"ofType {{ {inner} }}"
    return f'{{ __type(name: "Query") {{ {inner} }} }}'


FEED = (
    '{ engagementSummaries(contentIds: ["a", "b"]) '
    "{ contentId likes views uniqueViewers reactions { reaction count } viewerReaction } }"
)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("query", "refused_with"),
    [
        (FEED, None),
        ("query($ids: [ID!]!) { engagementSummaries(contentIds: $ids) { likes } }", None),
        (get_introspection_query(descriptions=True), None),
        (aliases(30), None),
        (aliases(31), "31 aliases"),
        (nested(15), None),
        (nested(16), "nested 16 fields deep; at most 15"),
        (doubled_spreads(7), None),  # 128 spreads of one field: answered
        (doubled_spreads(8), "selects 256 fields"),
        (doubled_spreads(20), "selects 256 fields"),
        (doubled_spreads(60), "selects 256 fields"),
        (repeated(200), None),
        (repeated(201), "selects 201 fields"),
        (
            '{ engagementSummary(contentId: "x") { '
            + "... on EngagementSummary { likes views } " * 101
            + "} }",
            "selects 202 fields",
        ),
        (doubled_aliases(4), None),
        (doubled_aliases(22), "fields deep"),
        (doubled_aliases(60), "fields deep"),
        (doubled_aliases_flat(5), "aliases"),
        (doubled_aliases_flat(60), "selects 256 fields"),
        (fragment_chain(19), None),  # 20 fragments, each spreading the next
        (fragment_chain(20), "spread more than 20 deep"),
        (fragment_chain(3_000), "spread more than 20 deep"),
        (fragment_cycle(2), "within itself"),
        (fragment_cycle(3_000), "spread more than 20 deep"),
        # List items: thirty pages of 100 reactors are 3,000; twenty are 2,000.
        (reactor_pages(30, 100), "up to 3,000 list items"),
        (reactor_pages(20, 100), None),
        (reactor_pages(30, 10), None),
        (
            "{ __schema { types { fields { type { fields { type { fields { type { fields "
            "{ type { fields { type { name } } } } } } } } } } } } }",
            "list items",
        ),
    ],
)
def test_limits_table(query: str, refused_with: str | None) -> None:
    errors = CHECK.check(parse(query))
    if refused_with is None:
        assert errors == []
    else:
        assert len(errors) == 1
        assert refused_with in errors[0].message
        assert errors[0].extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        ("{ __typename }", 1),
        ('{ engagementSummary(contentId: "x") { likes views } }', 3),
        # A literal id list: its length; reactions: one per reaction type.
        (
            '{ engagementSummaries(contentIds: ["a", "b", "c"]) { likes reactions { count } } }',
            3 * (1 + 1 + 6 * (1 + 1)),
        ),
        # No literal: the most the field takes (100 ids).
        (
            "query($i: [ID!]!) { engagementSummaries(contentIds: $i) { likes } }",
            100 * (1 + 1),
        ),
        # edges: the first of the connection that holds them.
        (
            '{ reactors(contentId: "x", first: 5) { edges { cursor } } }',
            1 + 5 * (1 + 1),
        ),
        # Spreads add their fragment's cost, once per spread.
        (
            '{ engagementSummary(contentId: "x") { ...F ...F } }'
            " fragment F on EngagementSummary { likes views }",
            1 + 2 + 2,
        ),
    ],
)
def test_cost_is_the_bound_on_values(query: str, cost: int) -> None:
    """Each field is a value; a list field multiplies its subtree."""
    at = DocumentLimits(SCHEMA._schema, Limits(max_cost=cost), LIST_BOUNDS)
    below = DocumentLimits(SCHEMA._schema, Limits(max_cost=cost - 1), LIST_BOUNDS)
    assert at.check(parse(query)) == []
    assert "could return" in below.check(parse(query))[0].message


@pytest.mark.parametrize(
    ("query", "items"),
    [
        ('{ engagementSummary(contentId: "x") { likes } }', 0),
        ('{ engagementSummary(contentId: "x") { reactions { count } } }', 6),
        ('{ engagementSummaries(contentIds: ["a", "b"]) { reactions { count } } }', 2 + 2 * 6),
        ('{ reactors(contentId: "x", first: 7) { edges { cursor } } }', 7),
        # A fragment is summarised once, not per spread: its edges take the
        # largest page (100), an upper bound still.
        (
            '{ reactors(contentId: "x", first: 7) { ...E } } '
            "fragment E on ReactorConnection { edges { cursor } a: edges { cursor } }",
            200,
        ),
    ],
)
def test_list_items_are_counted_through_lists_and_fragments(query: str, items: int) -> None:
    at = DocumentLimits(SCHEMA._schema, Limits(max_list_items=items), LIST_BOUNDS)
    below = DocumentLimits(SCHEMA._schema, Limits(max_list_items=items - 1), LIST_BOUNDS)
    assert at.check(parse(query)) == []
    assert "list items" in below.check(parse(query))[0].message


@pytest.mark.timeout(10)
@pytest.mark.parametrize("levels", [30, 60])
@pytest.mark.parametrize("shape", [doubled_spreads, doubled_aliases, doubled_aliases_flat])
async def test_hostile_shapes_are_refused_through_the_schema(shape, levels: int) -> None:
    result = await SCHEMA.execute(shape(levels))
    assert result.data is None
    assert result.errors
    assert (result.errors[0].extensions or {}).get("code") == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("length", [300, 400, 3_000])
async def test_long_fragment_chains_get_a_coded_error_not_a_recursion_error(length: int) -> None:
    result = await SCHEMA.execute(fragment_chain(length))
    assert result.errors
    assert "recursion" not in result.errors[0].message
    # Refused by the spread nesting limit, or by the token limit before that.
    assert (result.errors[0].extensions or {}).get("code") in {
        "GRAPHQL_VALIDATION_FAILED",
        "GRAPHQL_PARSE_FAILED",
    }


DASHBOARD = """query($id: ID!, $r: TimeRange!) {{ {fields} }}"""
ANALYTICS = (
    "contentAnalytics(contentId: $id, range: $r, granularity: HOUR) "
    "{ totals { views } series { start likesAdded likesRemoved netLikes views watchTimeMs } "
    "byPlatform { key views } completion { histogram } }"
)


def test_a_series_counts_toward_the_result_size_not_the_list_items() -> None:
    from schema.root import SERIES_POINTS

    # One series of the longest range is 9,601 points: far above the 2,000 list
    # items a client may ask for, which a series is not (no `first` shrinks it).
    assert SERIES_POINTS.most == 400 * 24 + 1
    one = parse(DASHBOARD.format(fields=ANALYTICS))
    assert CHECK.check(one) == []
    # Its points count toward the cost: 6 values each, plus the point itself.
    cost = 9_601 * 7
    assert DocumentLimits(SCHEMA._schema, Limits(max_cost=cost + 100), LIST_BOUNDS).check(one) == []
    tight = DocumentLimits(SCHEMA._schema, Limits(max_cost=cost - 1), LIST_BOUNDS).check(one)
    assert "could return" in tight[0].message


def test_aliased_series_are_refused_by_the_result_size() -> None:
    two = parse(DASHBOARD.format(fields=f"a: {ANALYTICS} b: {ANALYTICS}"))
    (error,) = CHECK.check(two)
    assert "could return" in error.message


def test_the_other_analytics_lists_count_as_list_items() -> None:
    # Breakdowns and histograms are ordinary bounded lists: they count.
    query = parse(
        DASHBOARD.format(fields="contentAnalytics(contentId: $id, range: $r) { byRegion { key } }")
    )
    limits = DocumentLimits(SCHEMA._schema, Limits(max_list_items=26 * 26), LIST_BOUNDS)
    assert "list items" in limits.check(query)[0].message
