"""The compiled executor gives graphql-core's own results and errors, and does compile."""

from __future__ import annotations

import enum
import gc
import operator
import weakref
from collections.abc import AsyncGenerator
from typing import Any, NamedTuple, cast

import pytest
import strawberry
from graphql import ExecutionResult, GraphQLString
from graphql.execution import Executor
from strawberry.schema.config import StrawberryConfig

from schema import documents
from schema.documents import CachedDocuments
from schema.execution import (
    LEAF,
    CompiledExecutionContext,
    _Fifo,
    _leaf_coercer,
    share_projections,
)
from schema.limits import Limits


@strawberry.enum
class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@strawberry.enum
class Letter(enum.StrEnum):
    A = "a"
    B = "b"


@strawberry.type
class Tag:
    name: str
    weight: int


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Person(Named):
    age: int


@strawberry.type
class Card:
    id: strawberry.ID
    count: int
    ratio: float
    flag: bool
    mood: Mood
    maybe_mood: Mood | None
    letter: Letter | None
    note: str | None
    tags: list[Tag]
    maybe_tags: list[Tag | None] | None
    numbers: list[int]
    child: Tag | None

    @strawberry.field
    def shout(self) -> str:
        return self.id.upper()

    @strawberry.field
    def scaled(self, by: int = 2) -> int:
        return self.count * by


def card(i: int, **over: Any) -> Card:
    values: dict[str, Any] = {
        "id": strawberry.ID(f"c{i}"),
        "count": i,
        "ratio": i / 4,
        "flag": i % 2 == 0,
        "mood": Mood.HAPPY if i % 2 else Mood.SAD,
        "maybe_mood": None if i % 3 else Mood.SAD,
        "letter": Letter.A if i % 2 else None,
        "note": None if i % 2 else f"n{i}",
        "tags": [Tag(name=f"t{i}", weight=i), Tag(name="x", weight=-i)],
        "maybe_tags": [Tag(name="m", weight=1), None] if i % 2 else None,
        "numbers": [i, i + 1],
        "child": Tag(name="kid", weight=0) if i % 2 else None,
    }
    values.update(over)
    return Card(**values)


GOOD = [card(i) for i in range(5)]
CASES: dict[str, list[Any]] = {
    "good": GOOD,
    "null in non-null leaf": [card(1), card(2, count=None)],
    "int out of range": [card(1, count=2**40)],
    "wrong enum value": [card(1, mood="nope")],
    "plain string for a str enum": [card(1, letter="a")],
    "null item in non-null list": [card(1, tags=[Tag(name="a", weight=1), None])],
    "not a list": [card(1, tags=Tag(name="a", weight=1))],
    "null card": [card(1), None],
    "bad nested leaf": [card(1, child=Tag(name="k", weight="x"))],  # type: ignore[arg-type]
    "tuple list": [card(1, tags=(Tag(name="a", weight=1),))],
    "int for a float": [card(1, ratio=3)],
    "bool for a float": [card(1, ratio=True)],
    "infinite float": [card(1), card(2, ratio=float("inf"))],
    "nan float": [card(1, ratio=float("nan"))],
}


@strawberry.type
class Query:
    @strawberry.field
    def cards(self, case: str) -> list[Card]:
        return CASES[case]

    @strawberry.field
    def maybe_cards(self, case: str) -> list[Card | None] | None:
        return CASES[case]

    @strawberry.field
    def first(self, case: str) -> Card | None:
        return CASES[case][0]

    @strawberry.field
    def people(self) -> list[Named]:
        return [Person(name="ada", age=36)]


FIELDS = """
  id count ratio flag mood maybeMood letter note numbers
  tags { name weight }
  maybeTags { name weight __typename }
  child { name }
"""

QUERIES = {
    "all fields": f"query($c: String!) {{ cards(case: $c) {{ {FIELDS} }} }}",
    "nullable list": f"query($c: String!) {{ maybeCards(case: $c) {{ {FIELDS} }} }}",
    "single object": f"query($c: String!) {{ first(case: $c) {{ {FIELDS} }} }}",
    "aliases and typename": (
        "query($c: String!) { cards(case: $c) { __typename a: id b: id n: count "
        "tags { w: weight w2: weight } } }"
    ),
    "fragments": (
        "query($c: String!) { cards(case: $c) { ...F ... on Card { mood } } } "
        "fragment F on Card { id tags { ...T } } fragment T on Tag { name }"
    ),
    "skip and include": (
        "query($c: String!, $yes: Boolean!) { cards(case: $c) { "
        "id @skip(if: $yes) count @include(if: $yes) tags @include(if: $yes) { name } } }"
    ),
    "resolver fields mixed in": (
        "query($c: String!) { cards(case: $c) { id shout scaled(by: 3) tags { name } } }"
    ),
    "interface": "{ people { name ... on Person { age } __typename } }",
}


def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    plain = strawberry.Schema(query=Query, types=[Person])
    compiled = strawberry.Schema(
        query=Query, types=[Person], execution_context_class=CompiledExecutionContext
    )
    return plain, compiled


PLAIN, COMPILED = schemas()


def outcome(result: Any) -> tuple[Any, list[Any]]:
    return result.data, [e.formatted for e in result.errors or []]


@pytest.mark.parametrize("query", QUERIES.values(), ids=list(QUERIES))
@pytest.mark.parametrize("case", list(CASES))
async def test_same_data_and_errors_as_graphql_core(query: str, case: str) -> None:
    variables = {"c": case, "yes": case != "good"}
    expected = outcome(await PLAIN.execute(query, variable_values=variables))
    got = outcome(await COMPILED.execute(query, variable_values=variables))
    assert got == expected


async def test_the_feed_shape_never_reaches_graphql_core_completion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {"object": 0, "value": 0}
    real_object, real_value = Executor.complete_object_value, Executor.complete_value

    def count_object(self: Executor, *args: Any) -> Any:
        calls["object"] += 1
        return real_object(self, *args)

    def count_value(self: Executor, *args: Any) -> Any:
        calls["value"] += 1
        return real_value(self, *args)

    monkeypatch.setattr(Executor, "complete_object_value", count_object)
    monkeypatch.setattr(Executor, "complete_value", count_value)
    result = await COMPILED.execute(QUERIES["all fields"], variable_values={"c": "good"})
    assert not result.errors
    assert len(result.data["cards"]) == 5  # type: ignore[index]
    # Only the root field's value goes through complete_value (non-null, then the
    # list); the list and every card in it are projected.
    assert calls == {"object": 0, "value": 2}
    calls.update(object=0, value=0)
    # Fields with resolvers are left to graphql-core, so the card is completed there.
    await COMPILED.execute(QUERIES["resolver fields mixed in"], variable_values={"c": "good"})
    assert calls["object"] == 5


@strawberry.type
class Row:
    name: str
    score: float | None
    tags: list[Tag]


@strawberry.type
class RowQuery:
    @strawberry.field
    def rows(self) -> list[Row]:
        # Plain dicts, read by the configured default resolver (item, not attribute).
        return cast(
            "list[Row]",
            [
                {"name": "a", "score": 1.5, "tags": [{"name": "t", "weight": 1}]},
                {"name": "b", "score": None, "tags": []},
            ],
        )


@pytest.mark.parametrize(
    "query",
    [
        "{ rows { name score tags { name weight } } }",
        "{ rows { __typename n: name tags { w: weight } } }",
    ],
)
async def test_reads_that_are_not_attributes_project_as_graphql_core_completes(
    query: str,
) -> None:
    config = StrawberryConfig(default_resolver=operator.getitem)
    plain = strawberry.Schema(query=RowQuery, config=config)
    compiled = strawberry.Schema(
        query=RowQuery, config=config, execution_context_class=CompiledExecutionContext
    )
    expected = outcome(await plain.execute(query))
    assert not expected[1]
    for _ in range(2):  # the second run finds the first one's projector
        assert outcome(await compiled.execute(query)) == expected


def test_equal_plans_share_one_generated_projector() -> None:
    from schema.execution import _Attribute, _projector

    coerce = _leaf_coercer(GraphQLString)
    first = (("a", LEAF, _Attribute("name"), True, coerce),)
    again = (("a", LEAF, _Attribute("name"), True, coerce),)
    other = (("a", LEAF, _Attribute("note"), True, coerce),)
    assert _projector(first) is _projector(again)
    assert _projector(first) is not _projector(other)
    assert _projector(first)(Tag(name="x", weight=1)) == {"a": "x"}


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def cards(self, n: int) -> AsyncGenerator[Card, None]:
        for i in range(n):
            yield card(i)


async def test_a_subscription_compiles_once_not_once_per_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = strawberry.Schema(
        query=Query, subscription=Subscription, execution_context_class=CompiledExecutionContext
    )
    compiled: list[str] = []
    real = CompiledExecutionContext._compile

    def counting(self: CompiledExecutionContext, return_type: Any, details: Any) -> Any:
        compiled.append(return_type.name)
        return real(self, return_type, details)

    monkeypatch.setattr(CompiledExecutionContext, "_compile", counting)
    stream = await schema.subscribe(
        "subscription { cards(n: 6) { id tags { name } child { name } } }"
    )
    results = [r async for r in stream]
    assert [(r.data or {})["cards"]["id"] for r in results] == [f"c{i}" for i in range(6)]
    assert not any(r.errors for r in results)
    # Card once; Tag once per selection (tags, child): not once per event.
    assert sorted(compiled) == ["Card", "Tag", "Tag"]


SHARED = [card(1), card(2)]


@strawberry.type
class SharedSubscription:
    @strawberry.subscription
    async def cards(self, n: int) -> AsyncGenerator[Card, None]:
        for c in SHARED[:n]:
            yield c

    @strawberry.subscription
    async def fresh(self, n: int) -> AsyncGenerator[Card, None]:
        for i in range(n):
            yield card(i)


# Sharing needs the one document per query text that the parse cache gives.
# This schema's lists have no declared bounds: the document limits would take
# each to be 100 items long and refuse the nested ones these tests need.
LOOSE = documents.DocumentRules(
    documents.DocumentPolicy(limits=Limits(max_cost=10**9, max_list_items=10**9))
)


SHARING = strawberry.Schema(
    query=Query,
    subscription=SharedSubscription,
    extensions=[lambda: CachedDocuments(LOOSE)],
    execution_context_class=CompiledExecutionContext,
)


async def run_subscription(query: str, variables: dict[str, Any] | None = None) -> list[Any]:
    stream = await SHARING.subscribe(query, variable_values=variables)
    return [r async for r in stream]


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        # Same text, same payload objects: the second subscriber reuses the results.
        ("subscription { cards(n: 2) { id tags { name } } }", None, True),
        # Arguments of the root field do not change the result of an event.
        (
            "subscription($n: Int!) { cards(n: $n) { id } }",
            "subscription($n: Int!) { cards(n: $n) { id } }",
            True,
        ),
        # A resolver field below the root: the event is not known to be pure.
        ("subscription { cards(n: 2) { id shout } }", None, False),
        # Different payload objects: nothing to share.
        ("subscription { fresh(n: 2) { id } }", None, False),
    ],
)
async def test_subscription_event_results_are_shared_only_when_pure(
    first: str, second: str | None, shared: bool
) -> None:
    _forget_shared_results()
    a = await run_subscription(first, {"n": 2} if "$n" in first else None)
    b = await run_subscription(second or first, {"n": 2} if "$n" in first else None)
    assert [r.data for r in a] == [r.data for r in b]
    assert not any(r.errors for r in a + b)
    # strawberry wraps graphql-core's result; the data dict is graphql-core's own.
    same = [ra.data is rb.data for ra, rb in zip(a, b, strict=True)]
    assert same == [shared, shared]


async def test_variables_that_change_the_selection_are_part_of_the_key() -> None:
    _forget_shared_results()
    query = "subscription($t: Boolean!) { cards(n: 1) { id tags @include(if: $t) { name } } }"
    with_tags = await run_subscription(query, {"t": True})
    without = await run_subscription(query, {"t": False})
    assert "tags" in with_tags[0].data["cards"]
    assert "tags" not in without[0].data["cards"]


def _forget_shared_results() -> None:
    for state in documents._STATES.values():
        state.pop("events", None)


def test_the_shared_results_are_bounded() -> None:
    results: _Fifo[tuple[int], tuple[object, ExecutionResult]] = _Fifo(maxsize=2)
    for i in range(3):
        results.put((i,), (object(), ExecutionResult({"i": i}, None)))
    assert len(results) == 2
    assert results.get((0,)) is None


class _Ctx:
    """A context whose lifetime the test watches."""


async def _context_outlives_request(schema: strawberry.Schema) -> bool:
    ctx = _Ctx()
    alive = weakref.ref(ctx)
    result = await schema.execute(
        QUERIES["all fields"], variable_values={"c": "good"}, context_value=ctx
    )
    assert not result.errors
    del ctx, result
    return alive() is not None


async def test_a_finished_request_is_freed_without_the_cyclic_gc() -> None:
    # graphql-core's executor refers to itself through its resolver helpers, so a
    # request's context, loaders and results waited for the cyclic GC: a young
    # collection of ~50,000 objects, a 15-30 ms stall, every few dozen feed requests.
    gc.collect()
    gc.disable()
    try:
        assert await _context_outlives_request(PLAIN)  # the cycle this guards against
        assert not await _context_outlives_request(COMPILED)
    finally:
        gc.enable()


CACHED = strawberry.Schema(
    query=Query,
    types=[Person],
    extensions=[lambda: CachedDocuments(LOOSE)],
    execution_context_class=CompiledExecutionContext,
)


async def test_plans_are_shared_by_requests_of_one_query_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled: list[Any] = []
    real = CompiledExecutionContext._compile

    def counting(self: CompiledExecutionContext, return_type: Any, details: Any) -> Any:
        compiled.append((return_type.name, dict(self.variable_values.coerced)))
        return real(self, return_type, details)

    monkeypatch.setattr(CompiledExecutionContext, "_compile", counting)
    query = (
        "query($c: String!, $yes: Boolean!) { cards(case: $c) { "
        "id count @include(if: $yes) tags { name } } }"
    )
    for case in ("good", "good", "nulls", "good"):
        result = await CACHED.execute(query, variable_values={"c": case, "yes": True})
        expected = await PLAIN.execute(query, variable_values={"c": case, "yes": True})
        assert outcome(result) == outcome(expected)
    # $c changes the data, not the selection: one compilation for all four.
    assert [name for name, _ in compiled] == ["Card", "Tag"]
    # $yes is read by a directive: its other value has plans of its own.
    result = await CACHED.execute(query, variable_values={"c": "good", "yes": False})
    assert outcome(result) == outcome(
        await PLAIN.execute(query, variable_values={"c": "good", "yes": False})
    )
    assert [v["yes"] for _, v in compiled] == [True, True, False, False]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("{ cards(case: $c) { id } }", set()),
        ("query($a: Boolean!) { cards(case: X) @skip(if: $a) { id } }", {"a"}),
        ("query($a: Boolean!) { cards(case: X) { ... on Card @include(if: $a) { id } } }", {"a"}),
        (
            "query($a: Boolean!, $b: Boolean!) { cards(case: X) { ...F @skip(if: $a) } } "
            "fragment F on Card { id tags @include(if: $b) { name } }",
            {"a", "b"},
        ),
    ],
)
def test_the_variables_read_by_directives(query: str, names: set[str]) -> None:
    from graphql import parse

    from schema.execution import _directive_variables

    doc = parse(query.replace("X", '"x"'))
    op = doc.definitions[0]
    fragments = {d.name.value: d for d in doc.definitions[1:]}  # type: ignore[attr-defined]
    assert _directive_variables(op, fragments) == names


LIST_QUERY = (
    'query($ids: [ID!]!, $names: [String], $one: ID, $nums: [Int!], $d: [ID!] = ["z"], '
    '$s: String!, $o: String = "dflt") { people { name } }'
)
VARIABLES: dict[str, dict[str, Any]] = {
    "lists of str": {"ids": ["a", "b"], "names": ["x", "y"], "nums": [1]},
    "empty lists": {"ids": [], "names": []},
    "ints as ids": {"ids": ["a", 7, 8.0]},
    "a float id that is no integer": {"ids": ["a", 1.5]},
    "null in a non-null list": {"ids": ["a", None]},
    "null in a nullable list": {"ids": ["a"], "names": ["x", None]},
    "a str for a list": {"ids": "a", "names": "x"},
    "a tuple": {"ids": ("a", "b")},
    "a nested list": {"ids": [["a"]]},
    "an object item": {"ids": [{"a": 1}]},
    "a str subclass": {"ids": [type("S", (str,), {})("a")]},
    "null list": {"ids": None, "names": None},
    "missing required": {"names": ["x"]},
    "the default used": {"ids": ["a"]},
    "the default overridden": {"ids": ["a"], "d": ["q", "r"]},
    "bools": {"ids": [True]},
    "single values": {"ids": ["a"], "one": "o", "s": "x", "o": "y"},
    "single values of other types": {"ids": ["a"], "one": 5, "s": 5, "o": None},
    "an empty string": {"ids": [""], "one": "", "s": ""},
    "a str subclass for one value": {"ids": ["a"], "s": type("S", (str,), {})("a")},
    "a list for one value": {"ids": ["a"], "s": ["a"]},
}


def _built(executor_class: type[Executor], variables: dict[str, Any]) -> Any:
    from graphql import parse

    built = executor_class.build(COMPILED._schema, parse(LIST_QUERY), None, None, variables)
    if isinstance(built, list):
        return [e.formatted for e in built]
    values = built.variable_values
    sources = {n: (s.signature.name, s.value) for n, s in values.sources.items()}
    return values.coerced, {n: type(v) for n, v in values.coerced.items()}, sources


@pytest.mark.parametrize("variables", VARIABLES.values(), ids=list(VARIABLES))
def test_variables_are_coerced_as_graphql_core_coerces_them(variables: dict[str, Any]) -> None:
    assert _built(CompiledExecutionContext, variables) == _built(Executor, variables)


def test_a_list_of_str_is_not_coerced_item_by_item(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphql.execution import values

    calls: list[Any] = []
    real = values.coerce_input_value

    def spy(value: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(value)
        return real(value, *args, **kwargs)

    monkeypatch.setattr(values, "coerce_input_value", spy)
    ids = [f"c{i}" for i in range(50)]
    _built(CompiledExecutionContext, {"ids": ids, "names": ["x"], "s": "y"})
    # Only the stand-ins: no item of either list went through graphql-core.
    assert calls == [(), (), ""]
    calls.clear()
    _built(Executor, {"ids": ids, "s": "y"})
    assert calls == [ids, "y"]


class Point(NamedTuple):
    x: int
    y: int


class SharedPoint(Point):
    __slots__ = ()


share_projections(SharedPoint)


@strawberry.type
class PointView:
    x: int
    y: int


@strawberry.type
class PointQuery:
    @strawberry.field
    def points(self) -> list[PointView]:
        return cast("list[PointView]", POINTS)


POINTS: list[Point] = []


@pytest.mark.parametrize("shared", [True, False])
async def test_a_shared_immutable_value_is_projected_once_per_plan(shared: bool) -> None:
    kind = SharedPoint if shared else Point
    POINTS[:] = [tuple.__new__(kind, (i, i * i)) for i in range(3)]
    compiled = strawberry.Schema(query=PointQuery, execution_context_class=CompiledExecutionContext)
    first = await compiled.execute("{ points { x y } }")
    again = await compiled.execute("{ points { x y } }")
    other = await compiled.execute("{ points { y } }")
    assert first.data == again.data == {"points": [{"x": i, "y": i * i} for i in range(3)]}
    assert other.data == {"points": [{"y": i * i} for i in range(3)]}
    # The same answer objects come back for a shared value only, and per plan.
    assert (first.data["points"][1] is again.data["points"][1]) is shared
    assert other.data["points"][1] is not first.data["points"][1]
