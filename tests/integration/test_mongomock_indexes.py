"""The in-process store's emulated secondary indexes and leading-$match aggregates
give exactly what mongomock's own scan gives, through inserts, updates and deletes."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import UpdateOne

from storage.embedded_mongo import EMULATED_INDEXES, open_embedded_client
from storage.mongo import INDEXES, ttl_indexes
from storage.mongo_analytics import analytics_indexes

DOCS: list[dict[str, Any]] = [
    {"_id": "a", "content_id": "c1", "counted": True, "viewer_key": "u1"},
    {"_id": "b", "content_id": "c2", "counted": False, "viewer_key": "u1"},
    {"_id": "c", "content_id": "c1", "counted": False, "viewer_key": "u2"},
    {"_id": "d", "content_id": ["c1", "c3"], "counted": True},  # an array matches elements
    {"_id": "e", "counted": True},  # no content_id
    {"_id": "f", "content_id": None, "counted": True},
    {"_id": "g", "content_id": 7, "counted": True},
    {"_id": "h", "content_id": {"x": "c1"}, "counted": True},
    {"_id": "i", "content_id": "c3", "counted": True, "viewer_key": "u3"},
]

QUERIES: list[dict[str, Any]] = [
    {"content_id": "c1"},
    {"content_id": "c1", "counted": True},
    {"content_id": {"$in": ["c3", "c1", "zz"]}, "counted": True},
    {"content_id": {"$in": []}},
    {"content_id": 7},
    {"content_id": None},  # not a plain value: the scan answers
    {"content_id": {"$ne": "c1"}},
    {"content_id": "c1", "$or": [{"counted": False}, {"viewer_key": "u1"}]},
    {"counted": True},
    {"viewer_key": "u1", "counted": True},
    {"viewer_key": {"$in": ["u3", "u2"]}},
    {"viewer_key": "nobody"},
]

# What the writes between the two reads do to both collections.
WRITES = [
    ("update_one", ({"_id": "b"}, {"$set": {"content_id": "c1"}})),
    ("update_many", ({"content_id": "c3"}, {"$set": {"content_id": "c9"}})),
    ("delete_one", ({"_id": "c"},)),
    ("replace_one", ({"_id": "g"}, {"content_id": "c1", "counted": True})),
    ("insert_one", ({"_id": "j", "content_id": "c1", "counted": True},)),
    ("update_one", ({"_id": "k"}, {"$set": {"content_id": "c3"}}, True)),  # upsert
]


def test_only_leading_fields_of_declared_indexes_are_emulated():
    analytics = analytics_indexes(ttl=True)
    for collection, fields in EMULATED_INDEXES.items():
        declared = (
            INDEXES.get(collection, [])
            + ttl_indexes(3600).get(collection, [])
            + analytics.get(collection, [])
        )
        leading = {next(iter(m.document["key"])) for m in declared}
        assert set(fields) <= leading | {"_id"}  # every collection has its _id index


async def ids(col: Any, query: dict[str, Any]) -> list[Any]:
    return [d["_id"] async for d in col.find(query)]


@pytest.mark.parametrize("query", QUERIES)
async def test_indexed_queries_give_the_scans_documents_in_its_order(query):
    db = open_embedded_client()["compat-index"]
    indexed, plain = db["view_sessions"], db["plain_sessions"]
    for col in (indexed, plain):
        await col.drop()
        await col.insert_many([dict(d) for d in DOCS])
    assert await ids(indexed, query) == await ids(plain, query)
    for name, args in WRITES:
        for col in (indexed, plain):
            await getattr(col, name)(*args)
    await indexed.bulk_write([UpdateOne({"_id": "a"}, {"$set": {"content_id": "c3"}})])
    await plain.bulk_write([UpdateOne({"_id": "a"}, {"$set": {"content_id": "c3"}})])
    for q in (
        query,
        {"content_id": "c3"},
        {"content_id": "c9"},
        {"content_id": "c1"},
        {"viewer_key": "u1"},
    ):
        assert await ids(indexed, q) == await ids(plain, q), q
        assert await indexed.count_documents(q) == await plain.count_documents(q)


async def test_an_indexed_query_looks_only_at_its_candidates(monkeypatch):
    from mongomock.store import CollectionStore

    from storage.mongomock_compat import _FieldIndex

    db = open_embedded_client()["compat-index"]
    col = db["view_sessions"]
    await col.drop()
    await col.insert_many([{"_id": i, "content_id": f"c{i % 100}"} for i in range(1000)])
    await ids(col, {"content_id": "c0"})  # builds the index
    sizes: list[int] = []
    real = _FieldIndex.candidates

    def counting(self: Any, values: list[Any]) -> list[Any]:
        found = real(self, values)
        sizes.append(len(found))
        return found

    def no_scan(self: Any) -> Any:
        raise AssertionError("scanned the whole collection")

    monkeypatch.setattr(_FieldIndex, "candidates", counting)
    monkeypatch.setattr(CollectionStore, "documents", property(no_scan))
    assert len(await ids(col, {"content_id": {"$in": ["c1", "c2"]}})) == 20
    assert sizes == [20]


@pytest.mark.parametrize(
    ("collection", "field", "query", "sort"),
    [
        # The enforcer's re-tiering pages (mongo_view_sessions.counted_of_viewer,
        # mongo_reactions.of_user): one actor's documents, never the collection.
        ("view_sessions", "viewer_key", {"viewer_key": "u7", "counted": True}, "_id"),
        ("reactions", "user_id", {"user_id": "u7"}, "content_id"),
    ],
)
async def test_an_actors_documents_are_found_without_a_scan(
    monkeypatch, collection, field, query, sort
):
    from mongomock.store import CollectionStore

    db = open_embedded_client()["compat-index"]
    col = db[collection]
    await col.drop()
    await col.insert_many(
        [
            {"_id": f"k{i:04d}", field: f"u{i % 50}", "content_id": f"c{i}", "counted": True}
            for i in range(1000)
        ]
    )
    expected = sorted(f"k{i:04d}" for i in range(7, 1000, 50))
    found = [d["_id"] async for d in col.find(query).sort(sort, 1).limit(100)]
    assert sorted(found) == expected  # builds the index

    def no_scan(self: Any) -> Any:
        raise AssertionError("scanned the whole collection")

    monkeypatch.setattr(CollectionStore, "documents", property(no_scan))
    again = [d["_id"] async for d in col.find(query).sort(sort, 1).limit(100)]
    assert again == found


PIPELINES: list[list[dict[str, Any]]] = [
    [
        {"$match": {"content_id": {"$in": ["c1", "c3"]}, "counted": True}},
        {"$group": {"_id": "$content_id", "n": {"$sum": 1}}},
    ],
    [
        {"$match": {"counted": True}},
        {"$group": {"_id": "$content_id", "v": {"$addToSet": "$viewer_key"}}},
    ],
    [{"$sort": {"_id": -1}}, {"$match": {"counted": True}}],  # not leading: as before
    [{"$match": {"content_id": "c1"}}, {"$project": {"viewer_key": 1}}, {"$limit": 2}],
]


def norm(rows: list[dict[str, Any]]) -> list[str]:
    """$group's output order is mongomock's own either way; so is $addToSet's."""
    return sorted(
        repr({k: sorted(v, key=repr) if isinstance(v, list) else v for k, v in r.items()})
        for r in rows
    )


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_aggregate_from_its_leading_match_gives_the_same_result(pipeline, monkeypatch):
    import mongomock.collection as mc

    db = open_embedded_client()["compat-agg"]
    col = db["view_sessions"]
    await col.drop()
    await col.insert_many([dict(d) for d in DOCS])
    got = [r async for r in col.aggregate(pipeline)]
    original = mc.Collection.aggregate.__wrapped__  # type: ignore[attr-defined]
    monkeypatch.setattr(mc.Collection, "aggregate", original)
    want = [r async for r in col.aggregate(pipeline)]
    assert norm(got) == norm(want)


@pytest.mark.parametrize(
    ("query", "sort", "limit"),
    [
        ({}, [("_id", 1)], 3),
        ({"_id": {"$gt": "k3"}}, [("_id", 1)], 4),
        ({"_id": {"$gte": "k3", "$lt": "k7"}}, [("_id", 1)], 0),
        ({"_id": {"$lte": "k5"}}, [("_id", -1)], 2),
        ({"_id": {"$gt": "zz"}}, [("_id", 1)], 5),
        ({"_id": {"$gt": 3}}, [("_id", 1)], 5),  # not a string bound: mongomock's own
        ({"v": 1}, [("_id", 1)], 5),  # not an _id range: mongomock's own
    ],
)
async def test_keyset_pages_in_id_order_are_mongomocks_own(query, sort, limit):
    db = open_embedded_client()["compat-order"]
    ordered, plain = db["contents"], db["plain_contents"]
    for col in (ordered, plain):
        await col.drop()
        # Out of order, with a delete and a re-insert.
        await col.insert_many([{"_id": f"k{i}", "v": i % 2} for i in (5, 1, 9, 3, 7, 2, 8)])
        await col.delete_one({"_id": "k9"})
        await col.insert_many([{"_id": "k0", "v": 1}, {"_id": "k9", "v": 0}])

    async def page(col: Any) -> list[Any]:
        cursor = col.find(query, {"_id": 1}).sort(sort)
        if limit:
            cursor = cursor.limit(limit)
        return [d["_id"] async for d in cursor]

    assert await page(ordered) == await page(plain)


@pytest.mark.parametrize(
    "query",
    [
        {"last_event_at": {"$lt": "T3"}},
        {"last_event_at": {"$lte": "T3"}, "counted": True},
        {"last_event_at": {"$gt": "T1", "$lt": "T5"}},
        {"last_event_at": {"$gte": "T6"}},
        {"last_event_at": {"$lt": "T3"}, "outbox.0": {"$exists": False}},
    ],
)
async def test_date_ranges_give_the_scans_documents(query):
    from datetime import UTC, datetime, timedelta

    base = datetime(2026, 1, 1, tzinfo=UTC)

    def at(name: str) -> datetime:
        return base + timedelta(minutes=int(name[1:]))

    query = {
        k: {op: at(v) for op, v in cond.items()} if k == "last_event_at" else cond
        for k, cond in query.items()
    }
    db = open_embedded_client()["compat-dates"]
    indexed, plain = db["view_sessions"], db["plain_sessions"]
    docs = [
        {"_id": f"s{i}", "last_event_at": at(f"T{(i * 3) % 7}"), "counted": i % 2 == 0}
        for i in range(10)
    ]
    docs += [
        {"_id": "none"},
        {"_id": "list", "last_event_at": [at("T0")]},
        {"_id": "o", "outbox": [1], "last_event_at": at("T0")},
    ]
    for col in (indexed, plain):
        await col.drop()
        await col.insert_many([dict(d) for d in docs])
        await col.update_one({"_id": "s1"}, {"$set": {"last_event_at": at("T9")}})
        await col.update_many({"counted": True}, {"$set": {"last_event_at": at("T2")}})
        await col.delete_one({"_id": "s3"})
    # No sort asked: the index answers oldest first, a scan in store order.
    assert sorted(await ids(indexed, query)) == sorted(await ids(plain, query))


async def test_expired_buckets_by_start_are_the_scans_through_updates_and_deletes():
    """analytics_minute's emulated `start` index (the embedded retention's expiry, a
    limited find) against a collection without one, through upserts that leave
    `start` alone, a delete and a page taken lazily from a long range."""
    from datetime import UTC, datetime, timedelta

    db = open_embedded_client()["compat-index"]
    indexed, plain = db["analytics_minute"], db["plain_minute"]
    base = datetime(2026, 11, 1, tzinfo=UTC)
    docs = [{"_id": f"s|{i}", "start": base + timedelta(minutes=i), "views": i} for i in range(300)]
    for col in (indexed, plain):
        await col.drop()
        await col.insert_many([dict(d) for d in reversed(docs)])
        await col.update_many({"views": {"$lt": 50}}, {"$inc": {"views": 1}})
        await col.update_one({"_id": "s|7"}, {"$set": {"start": base + timedelta(days=9)}})
        await col.delete_one({"_id": "s|3"})
        await col.update_one(
            {"_id": "s|400"}, {"$inc": {"views": 1}, "$setOnInsert": {"start": base}}, upsert=True
        )
    cutoff = {"start": {"$lt": base + timedelta(minutes=120)}}
    everything = [d["_id"] async for d in plain.find(cutoff, {"_id": 1})]
    got = [d["_id"] async for d in indexed.find(cutoff, {"_id": 1})]
    assert sorted(got) == sorted(everything) and len(got) == len(everything) == 119
    # A limited page walks the index, as a server would: the oldest first, so an
    # expiry pass takes the longest-expired buckets.
    starts = {d["_id"]: d["start"] async for d in plain.find(cutoff)}
    oldest = sorted(everything, key=lambda i: (starts[i], i))
    for limit in (10, 200):
        page = [d["_id"] async for d in indexed.find(cutoff, {"_id": 1}).limit(limit)]
        assert len(page) == min(limit, 119) and set(page) <= set(everything), limit
        assert [starts[i] for i in page] == [starts[i] for i in oldest[: len(page)]]
    assert await indexed.count_documents(cutoff) == await plain.count_documents(cutoff)
