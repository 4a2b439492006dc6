"""mongomock 4.3 + pymongo >= 4.11 bulk updates (mongomock issue 912): our shim."""

from typing import Any

import pytest
from pymongo import InsertOne, ReplaceOne, UpdateOne

from storage.embedded_mongo import open_embedded_client


async def test_bulk_update_and_replace_work_on_mongomock():
    col = open_embedded_client()["compat"]["docs"]
    await col.insert_one({"_id": "a", "v": 1})
    result = await col.bulk_write(
        [
            InsertOne({"_id": "b", "v": 1}),
            UpdateOne({"_id": "a", "v": 1}, {"$set": {"v": 2}}),
            UpdateOne({"_id": "z", "v": 9}, {"$set": {"v": 3}}),  # no match
            ReplaceOne({"_id": "b"}, {"v": 5}),
        ],
        ordered=False,
    )
    assert (result.inserted_count, result.matched_count) == (1, 2)
    assert await col.find_one({"_id": "a"}) == {"_id": "a", "v": 2}


async def test_a_real_sort_is_refused_not_ignored():
    col = open_embedded_client()["compat"]["docs"]
    with pytest.raises(NotImplementedError):
        await col.bulk_write([UpdateOne({}, {"$set": {"v": 1}}, sort={"v": 1})])


@pytest.mark.parametrize(
    "query",
    [
        {"_id": "k3"},
        {"_id": "missing"},
        {"_id": {"$in": ["k1", "k7", "nope", "k1"]}},
        {"_id": {"$in": ["k1", "k2"]}, "v": {"$gte": 2}},
        {"_id": "k2", "v": 1},
        {"_id": {"$in": []}},
        {"_id": {"$gt": "k5"}},  # not pinned: the plain scan answers
        {"v": 3},
    ],
)
async def test_id_lookup_gives_the_same_documents_as_a_scan(query):
    from mongomock.filtering import filter_applies

    col = open_embedded_client()["compat"]["ids"]
    await col.delete_many({})
    docs = [{"_id": f"k{i}", "v": i} for i in range(10)]
    await col.insert_many(docs)
    expected: list[str] = sorted(str(d["_id"]) for d in docs if filter_applies(query, d))
    assert sorted([str(d["_id"]) async for d in col.find(query)]) == expected
    assert await col.count_documents(query) == len(expected)


async def test_id_lookup_sees_updates_and_deletes():
    col = open_embedded_client()["compat"]["ids2"]
    await col.insert_one({"_id": "a", "v": 1})
    assert (await col.update_one({"_id": "a", "v": 1}, {"$set": {"v": 2}})).matched_count == 1
    assert (await col.update_one({"_id": "a", "v": 1}, {"$set": {"v": 3}})).matched_count == 0
    await col.delete_one({"_id": "a"})
    assert await col.find_one({"_id": "a"}) is None


# --- the per-document helpers: same output and errors as mongomock's own ---------


def _assorted_documents() -> list[object]:
    from collections import OrderedDict
    from datetime import UTC, datetime, timedelta, timezone

    from bson import Int64, ObjectId, Timestamp
    from bson.son import SON

    aware = datetime(2026, 11, 24, 1, 2, 3, 456789, tzinfo=UTC)
    plus2 = datetime(2026, 11, 24, 3, 2, 3, 999999, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2026, 1, 1, 0, 0, 0, 1500)
    return [
        {"_id": "s1", "a": 1, "b": 2.5, "c": None, "d": True, "e": "x", "f": b"\x00"},
        {"at": aware, "nested": {"at": plus2, "list": [naive, {"deep": aware}, (1, aware)]}},
        {"tuple": (1, 2, (3, [aware])), "empty": [], "emptyd": {}, "oid": ObjectId()},
        OrderedDict([("z", aware), ("a", OrderedDict([("n", naive)]))]),
        SON([("k", aware), ("sub", {"t": Timestamp(5, 1)})]),
        {"int64": Int64(7), "ts0": Timestamp(0, 0)},
        [aware, {"a": [naive]}],
        aware,
        "plain",
        7,
    ]


def _same(a: Any, b: Any) -> bool:
    from bson import Timestamp

    if isinstance(a, Timestamp) and isinstance(b, Timestamp):
        return True  # Timestamp(0, 0) becomes "now" in both: compare shape only
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "tzinfo"):
        return a == b and a.tzinfo == b.tzinfo
    return bool(a == b)


@pytest.mark.parametrize("doc", _assorted_documents(), ids=lambda d: type(d).__name__)
def test_datetime_patch_matches_mongomock(doc, monkeypatch):
    from mongomock import helpers

    open_embedded_client()  # installs the shims
    fast: Any = helpers.patch_datetime_awareness_in_document
    stock = fast.__wrapped__
    got = fast(doc)
    monkeypatch.setattr(helpers, "patch_datetime_awareness_in_document", stock)
    assert _same(got, stock(doc))


@pytest.mark.parametrize(
    "doc",
    [
        {"a": 1, "b": {"c": [{"\0bad": 1}]}},  # lists are not looked into, as in mongomock
        {"a": {"b\0": 1}},
        {"x\0": 1},
        {"a": {"b": {"c": {"d\0e": 1}}}},
        {"a": __import__("bson.son", fromlist=["SON"]).SON([("s\0", 1)])},
        {"a": __import__("collections").OrderedDict([("ok", {"n\0": 1})])},
        {"a": {1: "int key"}},
        {"fine": {"deep": {"er": [1, 2]}}},
    ],
)
def test_key_check_matches_mongomock(doc):
    import mongomock.collection as mc

    open_embedded_client()
    fast: Any = mc._recursive_key_check_null_character
    stock = fast.__wrapped__

    def outcome(fn):
        try:
            fn(doc)
        except Exception as exc:
            return type(exc), str(exc)
        return None

    assert outcome(fast) == outcome(stock)


async def test_documents_read_back_as_with_mongomock_helpers(monkeypatch):
    from datetime import UTC, datetime

    import mongomock.collection as mc
    from mongomock import helpers

    col = open_embedded_client()["compat"]["helpers"]
    await col.delete_many({})
    at = datetime(2026, 11, 24, 1, 2, 3, 456789, tzinfo=UTC)
    doc = {"at": at, "n": {"l": [at, {"x": at}], "e": []}, "t": (1, 2), "s": "x", "z": None}
    await col.insert_one({"_id": "fast", **doc})
    await col.update_one({"_id": "fast"}, {"$set": {"u": at, "v": {"w": [at]}}})
    fast_patch: Any = helpers.patch_datetime_awareness_in_document
    fast_check: Any = mc._recursive_key_check_null_character
    monkeypatch.setattr(helpers, "patch_datetime_awareness_in_document", fast_patch.__wrapped__)
    monkeypatch.setattr(mc, "_recursive_key_check_null_character", fast_check.__wrapped__)
    await col.insert_one({"_id": "stock", **doc})
    await col.update_one({"_id": "stock"}, {"$set": {"u": at, "v": {"w": [at]}}})
    fast = await col.find_one({"_id": "fast"})
    stock = await col.find_one({"_id": "stock"})
    assert fast is not None and stock is not None
    fast.pop("_id"), stock.pop("_id")
    assert _same(fast, stock)
    assert fast["n"]["l"][0] == at.replace(microsecond=456000)


RANGE_DOCS: list[dict[str, Any]] = [
    {"_id": "none"},
    {"_id": "empty-list", "outbox": []},
    {"_id": "list", "outbox": [{"occurred_at_ms": 5}, {"occurred_at_ms": 50}]},
    {"_id": "list-late", "outbox": [{"occurred_at_ms": 500}]},
    {"_id": "list-no-field", "outbox": [{"other": 1}]},
    {"_id": "scalar", "outbox": 3},
    {"_id": "null", "outbox": None},
    {"_id": "text", "outbox": "x"},
    {"_id": "flag", "outbox": True},
    {"_id": "empty-sub", "outbox": {}},
    {"_id": "nested-list", "outbox": [[{"occurred_at_ms": 1}]]},
    {"_id": "sub", "outbox": {"occurred_at_ms": 7}},
    {"_id": "sub-null", "outbox": {"occurred_at_ms": None}},
    {"_id": "str", "outbox": {"occurred_at_ms": "5"}},
    {"_id": "float", "v": 2.5, "outbox": [{"occurred_at_ms": 9.5}]},
    {"_id": "top", "v": 4},
    {"_id": "top-null", "v": None},
    {"_id": 7, "v": 1},
]


@pytest.mark.parametrize(
    "query",
    [
        {"outbox.occurred_at_ms": {"$lt": 100}},
        {"outbox.occurred_at_ms": {"$lte": 7, "$gt": 4}},
        {"outbox.occurred_at_ms": {"$gte": 500}},
        {"outbox.occurred_at_ms": {"$lt": float("nan")}},
        {"outbox": {"$lt": 10}},
        {"v": {"$gt": 1}},
        {"v": {"$lt": 3.0}},
        {"missing.path": {"$lt": 1}},
        {"v": {"$lt": None}},  # not a plain number: the plain scan answers
        {"v": {"$lt": 3}, "outbox": {"$gt": 1}},  # two fields: the plain scan
        {"_id": 7},
        {"_id": {"$in": [7, "none", "top"]}},
    ],
)
async def test_range_and_id_filters_give_the_same_documents_as_a_scan(query):
    from mongomock.filtering import filter_applies

    col = open_embedded_client()["compat"]["ranges"]
    await col.delete_many({})
    await col.insert_many([dict(d) for d in RANGE_DOCS])
    expected = sorted(str(d["_id"]) for d in RANGE_DOCS if filter_applies(query, d))
    assert sorted([str(d["_id"]) async for d in col.find(query)]) == expected
    assert await col.count_documents(query) == len(expected)


async def test_range_filter_on_an_empty_collection():
    col = open_embedded_client()["compat"]["ranges-empty"]
    assert [d async for d in col.find({"a.b": {"$lt": 5}})] == []


@pytest.mark.parametrize(
    ("query", "limit", "sort", "skip"),
    [
        ({}, 3, None, 0),
        ({"v": {"$gte": 5}}, 2, None, 0),
        ({"v": {"$gte": 5}}, 50, None, 0),  # fewer matches than the limit
        ({"v": 100}, 4, None, 0),  # no match
        ({}, 3, [("v", -1)], 0),  # sorted: mongomock's own path
        ({}, 3, None, 2),  # skipped: mongomock's own path
    ],
)
async def test_a_limited_find_returns_what_the_full_result_starts_with(query, limit, sort, skip):
    from datetime import UTC, datetime

    col = open_embedded_client()["compat"]["limited"]
    await col.delete_many({})
    at = datetime(2026, 1, 1, tzinfo=UTC)
    await col.insert_many([{"_id": f"k{i}", "v": i, "at": at} for i in range(10)])
    everything = col.find(query, {"v": 1, "at": 1}, sort=sort)
    expected = [d async for d in everything][skip : skip + limit]
    got = [d async for d in col.find(query, {"v": 1, "at": 1}, sort=sort, skip=skip).limit(limit)]
    assert got == expected
    assert all(d["at"].tzinfo is not None for d in got)  # tz-aware, as the client asks


async def test_a_limited_find_stops_scanning_at_the_limit(monkeypatch):
    import mongomock.collection as mc

    col = open_embedded_client()["compat"]["scan"]
    await col.delete_many({})
    await col.insert_many([{"_id": i, "v": i} for i in range(1000)])
    copied = 0
    real = mc.Collection._copy_only_fields

    def counting(self, *args, **kwargs):
        nonlocal copied
        copied += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(mc.Collection, "_copy_only_fields", counting)
    assert len([d async for d in col.find({}, {"v": 1}).limit(5)]) == 5
    assert copied == 5
