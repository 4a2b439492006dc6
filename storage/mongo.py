"""Opening a MongoDB server through motor, and the indexes every deployment has.

Motor is deprecated upstream; it is imported only here and in the repository
modules of this folder, so moving to PyMongo's AsyncMongoClient touches nothing else.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


def duplicate_key_errors(exc: BulkWriteError) -> list[dict[str, Any]]:
    """The write errors of an unordered bulk write, when every one is a duplicate key
    (a retry, or a concurrent writer, stored it already); re-raises anything else."""
    errors: list[dict[str, Any]] = exc.details.get("writeErrors", [])
    if any(e.get("code") != DUPLICATE_KEY for e in errors):
        raise exc
    return errors


def open_client(url: str, timeout_s: float = 5.0) -> Any:
    """A real server. The embedded mode's in-process store is storage/embedded_mongo.py."""
    from motor.motor_asyncio import AsyncIOMotorClient

    return AsyncIOMotorClient(
        url,
        tz_aware=True,
        uuidRepresentation="standard",
        # Without it the driver waits 30 s for a server before an operation fails.
        serverSelectionTimeoutMS=int(timeout_s * 1000),
    )


# Open view sessions by last event, for the idle closer's "not ended, idle since"
# (equality first, then the range).
IDLE_INDEX = IndexModel([("ended", ASCENDING), ("last_event_at", ASCENDING)], name="idle_open")

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
        # The Parquet export and the analytics rebuild read by time.
        IndexModel([("occurred_at_ms", ASCENDING), ("_id", ASCENDING)]),
    ],
    "view_events": [
        IndexModel([("events.occurred_at_ms", ASCENDING)]),
    ],
    "view_sessions": [
        IndexModel([("content_id", ASCENDING), ("counted", ASCENDING)]),
        IndexModel([("viewer_key", ASCENDING), ("content_id", ASCENDING)]),
        IndexModel([("outbox.occurred_at_ms", ASCENDING)], sparse=True),
        IDLE_INDEX,
    ],
}


def ttl_indexes(ttl_s: int) -> dict[str, list[IndexModel]]:
    """What a real server expires by itself (ARCHIVE_TTL_S): the raw view events and
    the archive (``archived_at``, set when stored), and view sessions that never
    counted. Counted sessions stay: the recount of views needs them. Changing the
    TTL later needs ``collMod`` (creating it again with another value fails)."""
    return {
        "events": [IndexModel([("archived_at", ASCENDING)], expireAfterSeconds=ttl_s)],
        "view_events": [IndexModel([("archived_at", ASCENDING)], expireAfterSeconds=ttl_s)],
        "view_sessions": [
            IndexModel(
                [("last_event_at", ASCENDING)],
                expireAfterSeconds=ttl_s,
                partialFilterExpression={"counted": False},
            )
        ],
    }


async def ensure_indexes(db: Any, *, ttl_s: int | None = None) -> None:
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)
    if ttl_s is not None:
        for collection, indexes in ttl_indexes(ttl_s).items():
            await db[collection].create_indexes(indexes)


async def ping(db: Any) -> None:
    await db.command("ping")


def unreachable(url: str, timeout_s: float) -> str | None:
    """Why the MongoDB at ``url`` cannot be used, in one line, or None if it answers.

    Synchronous, before the service starts: an unreachable server is a
    configuration error to report plainly, not a driver traceback 30 s later.
    """
    from pymongo import MongoClient
    from pymongo.errors import ConfigurationError, PyMongoError
    from pymongo.uri_parser import parse_uri

    try:
        hosts = ", ".join(f"{h}:{p}" for h, p in parse_uri(url)["nodelist"]) or url
    except (ConfigurationError, ValueError) as exc:
        return f"MONGODB_URL is not a MongoDB URL: {exc}"
    client: MongoClient[Any] = MongoClient(url, serverSelectionTimeoutMS=int(timeout_s * 1000))
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        reason = str(exc).split(",")[0].split(" (configured timeouts")[0]
        return f"MongoDB at {hosts} (MONGODB_URL) did not answer within {timeout_s:g} s: {reason}"
    finally:
        client.close()
    return None
