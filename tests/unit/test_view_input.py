"""ViewInput's own from_input hook builds what Strawberry's generic conversion builds."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.types.base import get_object_definition

from domain.view_policy import ClientPlatform, ViewSource
from schema.views import ViewInput

seen: list[list[ViewInput]] = []


@strawberry.type
class Query:
    @strawberry.field
    def take(self, inputs: list[ViewInput]) -> int:
        seen.append(inputs)
        return len(inputs)


QUERY = "query($v: [ViewInput!]!) { take(inputs: $v) }"
INPUTS: list[dict[str, Any]] = [
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
    {"contentId": "c3", "sessionId": "s3", "watchedMs": 7, "source": None, "deviceId": None},
    {"contentId": "c4", "sessionId": "s4", "watchedMs": 7, "visibleFraction": 1},
]


def _convert(*, generic: bool, monkeypatch: pytest.MonkeyPatch) -> list[ViewInput]:
    if generic:
        monkeypatch.setattr(get_object_definition(ViewInput, strict=True), "from_input", None)
    schema = strawberry.Schema(query=Query)
    seen.clear()
    result = schema.execute_sync(QUERY, variable_values={"v": INPUTS})
    assert result.errors is None, result.errors
    return seen[0]


def test_hook_builds_the_same_inputs_as_the_generic_conversion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = _convert(generic=False, monkeypatch=monkeypatch)
    generic = _convert(generic=True, monkeypatch=monkeypatch)
    assert fast == generic
    assert [type(v.source) for v in fast] == [type(v.source) for v in generic]
    assert [type(v.visible_fraction) for v in fast] == [type(v.visible_fraction) for v in generic]
    assert [i.to_raw() for i in fast] == [i.to_raw() for i in generic]
    assert fast[1].source is ViewSource.FEED and fast[1].platform is ClientPlatform.IOS
    assert fast[0].device_id is None and fast[0].final is False


def test_hook_is_installed() -> None:
    assert get_object_definition(ViewInput, strict=True).from_input is not None
