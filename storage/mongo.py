"""Opening MongoDB: a real server through motor, or mongomock-motor in process.

Motor is deprecated upstream; it is imported only here and in the repository
modules of this folder, so moving to PyMongo's AsyncMongoClient touches nothing else.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel


def open_client(url: str | None) -> Any:
    if url:
        from motor.motor_asyncio import AsyncIOMotorClient

        return AsyncIOMotorClient(url, tz_aware=True, uuidRepresentation="standard")
    from mongomock_motor import AsyncMongoMockClient

    from storage.mongomock_compat import (
        patch_bulk_sort,
        patch_document_helpers,
        patch_id_lookup,
        patch_limited_find,
    )

    patch_bulk_sort()
    patch_id_lookup()
    patch_document_helpers()
    patch_limited_find()
    return AsyncMongoMockClient(tz_aware=True)


INDEXES: dict[str, list[IndexModel]] = {
    "reactions": [
        # (content_id, user_id) is unique through _id (see mongo_reactions.reaction_id).
        IndexModel([("user_id", ASCENDING), ("content_id", ASCENDING)]),
        IndexModel(
            [
                ("content_id", ASCENDING),
                ("status", ASCENDING),
                ("updated_at", DESCENDING),
                ("user_id", DESCENDING),
            ]
        ),
        IndexModel([("outbox.occurred_at_ms", ASCENDING)], sparse=True),
    ],
    "events": [
        IndexModel([("content_id", ASCENDING), ("occurred_at_ms", ASCENDING)]),
    ],
    "view_sessions": [
        IndexModel([("content_id", ASCENDING), ("counted", ASCENDING)]),
        IndexModel([("viewer_key", ASCENDING), ("content_id", ASCENDING)]),
        IndexModel([("outbox.occurred_at_ms", ASCENDING)], sparse=True),
    ],
}


async def ensure_indexes(db: Any) -> None:
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)


async def ping(db: Any) -> None:
    await db.command("ping")
