"""The in-process store's faster copies of what a find returns
(storage/mongomock_compat.py ``patch_find_copies``) give what mongomock's own give."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from mongomock import collection as mc
from mongomock import helpers

from storage.embedded_mongo import open_embedded_client

AT = datetime(2026, 12, 1, 4, 5, 6, 7000)
DOCS: list[dict[str, Any]] = [
    {"_id": "a", "views": 3, "start": AT, "seen": ["t1", "t2"]},
    {
        "_id": "b",
        "platform": {"IOS": {"views": 1, "watch_ms": 2.5}, "WEB": {"views": 0}},
        "content": {f"c{i}": {"views": i, "likes_added": i % 3} for i in range(20)},
        "when": [AT, {"at": AT, "n": None}],
        "raw": b"\x00\x01",
        "flag": True,
        "oid": ObjectId("656900000000000000000001"),
        "pair": [("t", 1)],
        "ordered": OrderedDict(b=1, a={"c": AT}),
    },
]
PROJECTIONS: list[Any] = [
    None,
    {"seen": 0},
    {"views": 1, "platform": 1},
    {"content": 1, "views": 1},
    {"platform.IOS": 1},
    {"seen": 0, "start": 0, "content": 0},
    {"when": 1, "ordered": 1, "_id": 0},
    # What the analytics reads ask: a version, counters without the guard.
    {"views": 1},
    {"_id": 1},
    {"_id": 0, "views": True},
    {"seen": False, "start": 0, "_id": 0},
    {"scope": 0, "start": 0, "creator": 0, "seen": 0},
    {"absent": 1},
    {"absent": 0},
]


async def _find_all(col: Any, projection: Any) -> list[Any]:
    return [doc async for doc in col.find({}, projection)]


def _shape(value: Any) -> Any:
    """A value with its types, for comparing results exactly (dict vs OrderedDict,
    aware vs naive datetimes)."""
    if isinstance(value, dict):
        return (type(value), [(k, _shape(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value), [_shape(v) for v in value])
    if isinstance(value, datetime):
        return (datetime, value, value.tzinfo)
    return (type(value), value)


@pytest.mark.parametrize("projection", PROJECTIONS)
async def test_finds_return_what_mongomock_returns(projection: Any, monkeypatch) -> None:
    col = open_embedded_client()["likeview_reads_test"][f"c{id(projection)}"]
    await col.insert_many([dict(d) for d in DOCS])
    fast = await _find_all(col, projection)
    originals = (
        getattr(mc._copy_field, "__wrapped__", None),
        getattr(helpers.make_datetime_timezone_aware_in_document, "__wrapped__", None),
        getattr(mc.Collection._copy_only_fields, "__wrapped__", None),
    )
    assert None not in originals
    monkeypatch.setattr(mc, "_copy_field", originals[0])
    monkeypatch.setattr(helpers, "make_datetime_timezone_aware_in_document", originals[1])
    monkeypatch.setattr(mc.Collection, "_copy_only_fields", originals[2])
    slow = await _find_all(col, projection)
    assert _shape(fast) == _shape(slow)
    # The results are copies: changing one changes neither the store nor a later find.
    for doc in fast:
        for value in doc.values():
            if isinstance(value, dict):
                value.clear()
    assert _shape(await _find_all(col, projection)) == _shape(slow)


def test_a_copy_shares_only_immutable_values() -> None:
    open_embedded_client()
    doc: dict[str, Any] = {"a": {"b": [1, {"c": 2}]}, "at": AT}
    out: Any = mc._copy_field(doc, dict)
    assert out == doc and out is not doc
    assert out["a"] is not doc["a"] and out["a"]["b"] is not doc["a"]["b"]
    assert out["a"]["b"][1] is not doc["a"]["b"][1]
    # The cursor's own copy is made aware in place: no second copy.
    aware: Any = helpers.make_datetime_timezone_aware_in_document(out)
    assert aware is out and aware["a"] is out["a"]
    assert aware["at"] == AT.replace(tzinfo=UTC) and doc["at"].tzinfo is None


async def test_a_projection_that_mongomock_refuses_is_still_refused() -> None:
    col = open_embedded_client()["likeview_reads_test"]["refused"]
    await col.insert_many([dict(d) for d in DOCS])
    with pytest.raises(ValueError, match="mix including and excluding"):
        await _find_all(col, {"views": 1, "seen": 0})
