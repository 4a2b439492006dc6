"""Sorted-set replies as the trending reads take them, in both wire protocols."""

from __future__ import annotations

from typing import Any

import pytest

from storage.redis_trending import _score_pairs


@pytest.mark.parametrize(
    "reply",
    [
        [["a", 2.5], ["b", -1.0]],  # RESP3, decoded
        [[b"a", 2.5], [b"b", -1.0]],  # RESP3, bytes
        ["a", "2.5", "b", "-1"],  # RESP2, decoded
        [b"a", b"2.5", b"b", b"-1"],  # RESP2, bytes
    ],
)
def test_score_pairs_of_either_protocol(reply: list[Any]) -> None:
    assert list(_score_pairs(reply)) == [("a", 2.5), ("b", -1.0)]


def test_an_empty_set() -> None:
    assert list(_score_pairs([])) == []
