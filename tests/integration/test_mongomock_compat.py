"""mongomock 4.3 + pymongo >= 4.11 bulk updates (mongomock issue 912): our shim."""

import pytest
from pymongo import InsertOne, ReplaceOne, UpdateOne

from storage.mongo import open_client


async def test_bulk_update_and_replace_work_on_mongomock():
    col = open_client(None)["compat"]["docs"]
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
    col = open_client(None)["compat"]["docs"]
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

    col = open_client(None)["compat"]["ids"]
    await col.delete_many({})
    docs = [{"_id": f"k{i}", "v": i} for i in range(10)]
    await col.insert_many(docs)
    expected: list[str] = sorted(str(d["_id"]) for d in docs if filter_applies(query, d))
    assert sorted([str(d["_id"]) async for d in col.find(query)]) == expected
    assert await col.count_documents(query) == len(expected)


async def test_id_lookup_sees_updates_and_deletes():
    col = open_client(None)["compat"]["ids2"]
    await col.insert_one({"_id": "a", "v": 1})
    assert (await col.update_one({"_id": "a", "v": 1}, {"$set": {"v": 2}})).matched_count == 1
    assert (await col.update_one({"_id": "a", "v": 1}, {"$set": {"v": 3}})).matched_count == 0
    await col.delete_one({"_id": "a"})
    assert await col.find_one({"_id": "a"}) is None
