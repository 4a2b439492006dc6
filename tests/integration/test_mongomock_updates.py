"""The in-process store's faster update path (storage/mongomock_compat.py
``patch_update_path``) gives what mongomock's own gives: the same matches for
$in/$nin, exact document copies, the same rollback on a unique-index violation."""

from __future__ import annotations

import copy
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import pytest
from mongomock import filtering
from pymongo.errors import DuplicateKeyError

from storage.embedded_mongo import open_embedded_client
from storage.mongomock_compat import document_copy, path_copy, touched_paths

SEARCHES: list[list[Any]] = [
    ["a", "b", "c", "d", "e", "f"],  # strings only: the set path
    ["a", "b", "c", "d", 1, "f"],  # not all strings: mongomock's own
    ["a", "b"],  # short: mongomock's own
    ["x1", "x2", "x3", "x4", "x5", "x6"],
]
VALUES: list[Any] = [
    "a",
    "zz",
    ["q", "f"],
    ["q", "r"],
    [{"a": 1}, "c"],  # an unhashable value beside a match
    [{"a": 1}],
    [],
    1,
    [1, "x6"],
    None,
    filtering.NOTHING,
]


@pytest.mark.parametrize("search", SEARCHES)
@pytest.mark.parametrize("value", VALUES)
def test_in_and_nin_match_as_mongomock_does(search: list[Any], value: Any) -> None:
    open_embedded_client()  # installs the patches
    ops = filtering._filterer_inst._operator_map
    expected = filtering._in_op(value, search)
    assert ops["$in"](value, search) == expected
    assert ops["$nin"](value, search) == (not expected)


def test_document_copy_is_a_deep_copy() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    doc: OrderedDict[str, Any] = OrderedDict(
        _id="x",
        start=at,
        seen=["t1", "t2"],
        platform={"IOS": {"views": 3}},
        nested=[{"a": [1, 2]}, ("t", 1)],
        raw=b"\x00",
    )
    out = document_copy(doc)
    assert out == copy.deepcopy(doc) and type(out) is OrderedDict
    out["seen"].append("t3")
    out["platform"]["IOS"]["views"] = 4
    out["nested"][0]["a"].append(3)
    assert doc["seen"] == ["t1", "t2"]
    assert doc["platform"] == {"IOS": {"views": 3}}
    assert doc["nested"][0] == {"a": [1, 2]}


async def test_updates_count_guard_and_roll_back_as_before() -> None:
    db = open_embedded_client()["t"]
    col = db["c"]
    await col.create_index("u", unique=True)
    guard = {"$push": {"seen": {"$each": ["t1", "t2"], "$slice": -3}}, "$inc": {"n.a": 1}}
    await col.update_one({"_id": 1, "seen": {"$nin": ["t1", "t2"]}}, guard, upsert=True)
    # A guard filter of more than four tokens (the set path) misses a seen one.
    tokens = ["t2", "t3", "t4", "t5", "t6"]
    missed = await col.update_one({"_id": 1, "seen": {"$nin": tokens}}, {"$inc": {"n.a": 1}})
    assert (missed.matched_count, missed.modified_count) == (0, 0)
    fresh = ["t7", "t8", "t9", "t10", "t11"]
    hit = await col.update_one(
        {"_id": 1, "seen": {"$nin": fresh}},
        {"$inc": {"n.a": 1}, "$push": {"seen": {"$each": fresh, "$slice": -3}}},
    )
    assert (hit.matched_count, hit.modified_count) == (1, 1)
    same = await col.update_one({"_id": 1}, {"$set": {"n.a": 2}})
    assert (same.matched_count, same.modified_count) == (1, 0)
    await col.insert_one({"_id": 2, "u": "taken"})
    with pytest.raises(DuplicateKeyError):
        await col.update_one({"_id": 1}, {"$set": {"u": "taken"}, "$inc": {"n.a": 5}})
    # Rolled back whole, nested counter included.
    assert await col.find_one({"_id": 1}) == {
        "_id": 1,
        "seen": ["t9", "t10", "t11"],
        "n": {"a": 2},
    }


@pytest.mark.parametrize(
    ("update", "paths"),
    [
        ({"$inc": {"a.b": 1}, "$push": {"seen": {"$each": ["t"]}}}, [["a", "b"], ["seen"]]),
        ({"$set": {"x": 1}, "$setOnInsert": {"y": {"z": 1}}}, [["x"], ["y"]]),
        ({"$unset": {"a": ""}}, None),  # not one of the plain operators
        ({"$inc": {"arr.0.n": 1}}, None),  # an array index
        ({"$set": {"arr.$.n": 1}}, None),  # positional
        ({"x": 1}, None),  # a replacement
    ],
)
def test_touched_paths(update: dict[str, Any], paths: list[list[str]] | None) -> None:
    assert touched_paths(update) == paths


def test_path_copy_copies_the_touched_paths_and_shares_the_rest() -> None:
    untouched = {"b": {"views": 1}}
    doc: OrderedDict[str, Any] = OrderedDict(
        _id="x", content={"a": {"views": 1}, **untouched}, seen=["t1"], n=1
    )
    snap = path_copy(doc, [["content", "a", "views"], ["seen"], ["new", "field"]])
    assert snap == doc and type(snap) is OrderedDict
    assert snap["content"] is not doc["content"] and snap["seen"] is not doc["seen"]
    assert snap["content"]["a"] is not doc["content"]["a"]
    assert snap["content"]["b"] is doc["content"]["b"]  # shared: not on a path
    doc["content"]["a"]["views"] = 2
    doc["seen"].append("t2")
    doc["new"] = {"field": 1}
    assert snap == OrderedDict(
        _id="x", content={"a": {"views": 1}, "b": {"views": 1}}, seen=["t1"], n=1
    )


async def test_a_rolled_back_update_keeps_what_it_did_not_touch() -> None:
    col = open_embedded_client()["t"]["big"]
    await col.create_index("u", unique=True)
    await col.insert_one({"_id": 2, "u": "taken"})
    content = {f"c{i}": {"views": i} for i in range(50)}
    await col.insert_one({"_id": 1, "content": content, "seen": ["t0"]})
    inc = {"$inc": {"content.c3.views": 10, "content.new.views": 1}, "$push": {"seen": "t1"}}
    with pytest.raises(DuplicateKeyError):
        await col.update_one({"_id": 1}, {**inc, "$set": {"u": "taken"}})
    assert await col.find_one({"_id": 1}) == {"_id": 1, "content": content, "seen": ["t0"]}
    done = await col.update_one({"_id": 1}, inc)
    assert done.modified_count == 1
    after = await col.find_one({"_id": 1})
    assert after["content"]["c3"] == {"views": 13} and after["content"]["new"] == {"views": 1}
    assert after["content"]["c4"] == {"views": 4} and after["seen"] == ["t0", "t1"]
