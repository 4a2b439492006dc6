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
