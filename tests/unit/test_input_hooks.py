"""The from_input hooks (schema.inputs) build what strawberry's generic conversion builds."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.types.base import get_object_definition

from domain.view_policy import ClientPlatform, ViewSource
from schema.contents import RegisterContentInput
from schema.engagement import LikeInput, UnlikeInput
from schema.enums import ContentKind, ReactionType
from schema.inputs import _HOOKED, leaf_input, use_input_hooks
from schema.views import ViewInput

seen: list[list[Any]] = []


def _schema_for(cls: type) -> strawberry.Schema:
    def resolve(inputs: Any) -> int:
        seen.append(inputs)
        return len(inputs)

    # Set, not written: this module's annotations are strings (PEP 563).
    resolve.__annotations__ = {"inputs": list[cls], "return": int}  # type: ignore[valid-type]

    @strawberry.type
    class Query:
        take: int = strawberry.field(resolver=resolve)

    return strawberry.Schema(query=Query)


CASES: list[tuple[type, list[dict[str, Any]]]] = [
    (
        ViewInput,
        [
            {"contentId": "c1", "sessionId": "s1", "watchedMs": 0},
            {
                "contentId": "c2",
                "sessionId": "s2",
                "deviceId": "d2",
                "eventId": "e2",
                "watchedMs": -5,
                "positionMs": 1200,
                "visibleFraction": 0.25,
                "source": "FEED",
                "platform": "IOS",
                "final": True,
            },
            {"contentId": "c3", "sessionId": "s3", "watchedMs": 7, "source": None},
            {"contentId": "c4", "sessionId": "s4", "watchedMs": 7, "visibleFraction": 1},
        ],
    ),
    (
        LikeInput,
        [
            {"contentId": "c1"},
            {"contentId": "c2", "reaction": "LOVE", "requestId": "r2"},
            {"contentId": "c3", "requestId": None},
            {"contentId": "c4", "deviceId": "d4", "requestId": "r4"},
            {"contentId": "c5", "deviceId": None},
        ],
    ),
    (
        UnlikeInput,
        [
            {"contentId": "c1"},
            {"contentId": "c2", "requestId": "r"},
            {"contentId": "c3", "deviceId": "d3"},
        ],
    ),
    (
        RegisterContentInput,
        [
            {"contentId": "c1", "creatorId": "u1", "kind": "VIDEO"},
            {"contentId": "c2", "creatorId": "u2", "kind": "SHORT", "durationMs": 15000},
            {"contentId": "c3", "creatorId": "u3", "kind": "POST", "durationMs": None},
        ],
    ),
]


def _convert(cls: type, values: list[dict[str, Any]], *, hooked: bool) -> list[Any]:
    schema = _schema_for(cls)
    use_input_hooks(hooked)
    try:
        seen.clear()
        name = schema.schema_converter.config.name_converter.from_type(
            get_object_definition(cls, strict=True)
        )
        query = f"query($v: [{name}!]!) {{ take(inputs: $v) }}"
        result = schema.execute_sync(query, variable_values={"v": values})
        assert result.errors is None, result.errors
        return seen[0]
    finally:
        use_input_hooks(True)


@pytest.mark.parametrize(("cls", "values"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_hook_builds_the_same_inputs_as_the_generic_conversion(
    cls: type, values: list[dict[str, Any]]
) -> None:
    fast = _convert(cls, values, hooked=True)
    generic = _convert(cls, values, hooked=False)
    assert fast == generic
    for a, b in zip(fast, generic, strict=True):
        assert {k: type(v) for k, v in vars(a).items()} == {k: type(v) for k, v in vars(b).items()}


def test_enums_and_defaults_come_out_as_the_resolvers_expect() -> None:
    views = _convert(ViewInput, CASES[0][1], hooked=True)
    assert views[1].source is ViewSource.FEED and views[1].platform is ClientPlatform.IOS
    assert views[0].device_id is None and views[0].final is False
    likes = _convert(LikeInput, CASES[1][1], hooked=True)
    assert likes[0].reaction is ReactionType.LIKE and likes[1].reaction is ReactionType.LOVE
    assert likes[0].device_id is None and likes[3].device_id == "d4"
    unlikes = _convert(UnlikeInput, CASES[2][1], hooked=True)
    assert unlikes[0].device_id is None and unlikes[2].device_id == "d3"
    contents = _convert(RegisterContentInput, CASES[3][1], hooked=True)
    assert contents[1].kind is ContentKind.SHORT and contents[0].duration_ms is None


def test_every_hooked_type_is_covered_and_installed() -> None:
    assert {c for c, _ in CASES} == set(_HOOKED)
    for cls in _HOOKED:
        assert get_object_definition(cls, strict=True).from_input is not None


def test_the_hooks_come_off() -> None:
    use_input_hooks(False)
    try:
        assert all(get_object_definition(c, strict=True).from_input is None for c in _HOOKED)
    finally:
        use_input_hooks(True)


def test_an_input_with_a_nested_field_is_refused() -> None:
    @strawberry.input
    class Inner:
        x: int

    @strawberry.input
    class Outer:
        inner: Inner
        tags: list[str]

    with pytest.raises(TypeError, match="inner, tags"):
        leaf_input(Outer)
    assert Outer not in _HOOKED
