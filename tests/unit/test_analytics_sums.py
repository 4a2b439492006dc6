"""Summing bucket documents in their stored (nested) form, against the flat
definitions of domain.analytics."""

from __future__ import annotations

import random
from typing import Any

import pytest

from domain.analytics import (
    TopContent,
    add_counters,
    content_key,
    content_totals,
    top_contents,
)
from domain.analytics_sums import add_nested, content_sums, flat, sum_nested


class Int64(int):
    """bson.Int64 as a real server's driver may return a counter: an int subclass."""


@pytest.mark.parametrize(
    ("docs", "expected"),
    [
        ([], {}),
        ([{"views": 2}, {"views": 3, "likes_added": 1}], {"views": 5, "likes_added": 1}),
        (
            [
                {"platform": {"IOS": {"views": 1}}},
                {"platform": {"IOS": {"views": 2, "watch_ms": 7}}},
            ],
            {"platform": {"IOS": {"views": 3, "watch_ms": 7}}},
        ),
        (
            [{"platform": {"IOS": {"views": 1}}}, {"platform": {"WEB": {"views": 4}}}],
            {"platform": {"IOS": {"views": 1}, "WEB": {"views": 4}}},
        ),
        # A real server's other number types count; what is not a number does not.
        ([{"views": Int64(2)}, {"views": 2.0}, {"views": True, "note": "x"}], {"views": 4}),
        ([{"completion": {"n": 1, "h3": 1}}, {}], {"completion": {"n": 1, "h3": 1}}),
    ],
)
def test_sum_nested(docs: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    assert sum_nested(docs) == expected


def test_add_nested_does_not_share_the_added_documents() -> None:
    doc = {"platform": {"IOS": {"views": 1}}}
    total = add_nested({}, doc)
    add_nested(total, doc)
    assert doc == {"platform": {"IOS": {"views": 1}}}
    assert total == {"platform": {"IOS": {"views": 2}}}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, {}),
        ({"views": 3}, {"views": 3}),
        (
            {"platform": {"IOS": {"views": 1, "watch_ms": 5}}, "completion": {"h0": 2}},
            {"platform.IOS.views": 1, "platform.IOS.watch_ms": 5, "completion.h0": 2},
        ),
        ({"views": Int64(4), "x": 1.0, "flag": False, "s": "a"}, {"views": 4, "x": 1}),
    ],
)
def test_flat(doc: dict[str, Any], expected: dict[str, int]) -> None:
    out = flat(doc)
    assert out == expected
    assert all(type(v) is int for v in out.values())


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([], []),
        (
            [{"a": {"views": 2, "likes_added": 1}}, {"a": {"views": 1}, "b": {"likes_added": 3}}],
            [TopContent("a", 3, 1), TopContent("b", 0, 3)],
        ),
        # Content ids are stored as field names (escaped) and come back as ids.
        ([{content_key("x.y$"): {"views": Int64(5)}}], [TopContent("x.y$", 5, 0)]),
    ],
)
def test_content_sums(parts: list[dict[str, Any]], expected: list[TopContent]) -> None:
    out = content_sums(parts)
    assert sorted(out, key=lambda t: t.content_id) == expected
    assert all(type(t.views) is int and type(t.likes_added) is int for t in out)


def _generated(rng: random.Random) -> dict[str, Any]:
    """A creator bucket as stored, with random counters."""
    doc: dict[str, Any] = {"views": rng.randrange(50), "likes_added": rng.randrange(9)}
    doc["platform"] = {
        p: {"views": rng.randrange(9), "watch_ms": rng.randrange(10**6)}
        for p in rng.sample(["IOS", "WEB", "TV", "unknown"], rng.randrange(5))
    }
    doc["content"] = {
        content_key(f"c.{i}"): {
            k: rng.randrange(1, 6) for k in rng.sample(["views", "likes_added"], rng.randrange(3))
        }
        for i in rng.sample(range(40), rng.randrange(30))
    }
    return doc


@pytest.mark.parametrize("seed", range(5))
def test_nested_sums_equal_flat_sums(seed: int) -> None:
    """The nested read path gives what flattening every bucket and summing the
    dotted counters gave (the read path before the nested one)."""
    rng = random.Random(seed)
    docs = [_generated(rng) for _ in range(31)]
    by_flat: dict[str, int] = {}
    for doc in docs:
        add_counters(by_flat, flat(doc))
    assert flat(sum_nested(docs)) == by_flat
    for top in (0, 1, 10, 100):
        assert top_contents(content_sums(d["content"] for d in docs), top) == top_contents(
            content_totals(by_flat), top
        )
