"""Creator notifications in MongoDB (docs/NOTIFICATIONS.md).

- ``notifications``: one document per notification, ``_id`` its id (a hash of its
  dedupe key), so exactly once is the unique ``_id``: an insert that meets a
  duplicate key was stored before. ``webhook: "pending"`` until the webhook side
  has enqueued its deliveries.
- ``notification_folds``: notifications a rate limit held back, same ``_id``, until a
  digest takes them (``digest_id``).
- ``notification_marks``: per content, the highest milestone threshold notified
  per metric and whether the first like was: never expire, so a threshold is never
  notified twice, even after its notification's TTL.
- ``notification_preferences``: per creator, muted kinds and contents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from domain.notifications import (
    MAX_MUTED_CONTENTS,
    Notification,
    NotificationKind,
    Preferences,
    Recent,
    seq_of,
)

NOTIFICATIONS = "notifications"
FOLDS = "notification_folds"
MARKS = "notification_marks"
PREFERENCES = "notification_preferences"
WEBHOOK_PENDING = "pending"

INDEXES: dict[str, list[IndexModel]] = {
    NOTIFICATIONS: [
        # The connection's order (newest first), and the sliding hour of the limits.
        IndexModel([("creator_id", ASCENDING), ("seq", DESCENDING)], name="creator_seq"),
        IndexModel(
            [("creator_id", ASCENDING), ("content_id", ASCENDING), ("seq", DESCENDING)],
            name="creator_content_seq",
        ),
        # Unread counts and unreadOnly pages.
        IndexModel([("creator_id", ASCENDING), ("read_at", ASCENDING)], name="creator_unread"),
        # The webhook side's queue.
        IndexModel([("webhook", ASCENDING), ("created_at", ASCENDING)], name="webhook_queue"),
    ],
    FOLDS: [
        IndexModel(
            [("creator_id", ASCENDING), ("content_id", ASCENDING), ("digest_id", ASCENDING)],
            name="creator_content_digest",
        ),
        IndexModel([("digest_id", ASCENDING), ("created_at", ASCENDING)], name="undigested"),
    ],
}


def ttl_indexes() -> dict[str, list[IndexModel]]:
    """A real server expires notifications at ``expires_at`` (NOTIFICATION_TTL_S after
    creation); folds a week after they were held back (a digest takes them long before)."""
    return {
        NOTIFICATIONS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
        FOLDS: [IndexModel([("created_at", ASCENDING)], expireAfterSeconds=7 * 86_400)],
    }


async def ensure_notification_indexes(db: Any, *, ttl: bool) -> None:
    for name, indexes in INDEXES.items():
        await db[name].create_indexes(indexes)
    if ttl:
        for name, indexes in ttl_indexes().items():
            await db[name].create_indexes(indexes)


def to_doc(n: Notification) -> dict[str, Any]:
    return {
        "_id": n.id,
        "dedupe": n.dedupe,
        "creator_id": n.creator_id,
        "content_id": n.content_id,
        "kind": n.kind.value,
        "payload": dict(n.payload),
        "text": n.text,
        "created_at": n.created_at,
        "read_at": n.read_at,
        "seq": n.seq,
        "expires_at": n.expires_at,
        "webhook": WEBHOOK_PENDING,
    }


def from_doc(doc: Mapping[str, Any]) -> Notification:
    return Notification(
        id=doc["_id"],
        dedupe=doc["dedupe"],
        creator_id=doc["creator_id"],
        content_id=doc["content_id"],
        kind=NotificationKind(doc["kind"]),
        payload=dict(doc.get("payload") or {}),
        text=doc["text"],
        created_at=doc["created_at"],
        expires_at=doc["expires_at"],
        read_at=doc.get("read_at"),
    )


class MongoNotifications:
    def __init__(self, db: Any) -> None:
        self._n = db[NOTIFICATIONS]
        self._folds = db[FOLDS]
        self._marks = db[MARKS]
        self._prefs = db[PREFERENCES]

    # --- the notifier ----------------------------------------------------------------

    async def insert(self, notification: Notification) -> bool:
        try:
            await self._n.insert_one(to_doc(notification))
        except DuplicateKeyError:
            return False
        return True

    async def known(self, ids: Sequence[str]) -> set[str]:
        wanted = {"_id": {"$in": list(ids)}}
        found = {doc["_id"] async for doc in self._n.find(wanted, {"_id": 1})}
        found |= {doc["_id"] async for doc in self._folds.find(wanted, {"_id": 1})}
        return found

    async def recent(self, creator_id: str, content_id: str, since_ms: int) -> Recent:
        since = {"$gte": seq_of(since_ms, "")}
        total = await self._n.count_documents({"creator_id": creator_id, "seq": since})
        mine = await self._n.count_documents(
            {"creator_id": creator_id, "content_id": content_id, "seq": since}
        )
        return Recent(for_content=mine, total=total)

    async def fold(self, notification: Notification) -> bool:
        doc = to_doc(notification)
        del doc["webhook"]  # never a notification the webhook side sends
        doc["digest_id"] = None
        try:
            await self._folds.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def folds_for(
        self, creator_id: str, content_id: str, digest_id: str, limit: int
    ) -> tuple[list[Notification], int]:
        query = {
            "creator_id": creator_id,
            "content_id": content_id,
            "digest_id": {"$in": [None, digest_id]},
        }
        total = await self._folds.count_documents(query)
        cursor = self._folds.find(query).sort("seq", ASCENDING).limit(limit)
        return [from_doc(doc) async for doc in cursor], total

    async def give_folds(self, creator_id: str, content_id: str, digest_id: str) -> None:
        await self._folds.update_many(
            {"creator_id": creator_id, "content_id": content_id, "digest_id": None},
            {"$set": {"digest_id": digest_id}},
        )

    async def stale_folds(self, before: datetime, limit: int) -> list[tuple[str, str, int]]:
        cursor = (
            self._folds.find({"digest_id": None, "created_at": {"$lt": before}})
            .sort("created_at", ASCENDING)
            .limit(limit)
        )
        out: dict[tuple[str, str], int] = {}
        async for doc in cursor:
            key = (doc["creator_id"], doc["content_id"])
            out.setdefault(key, from_doc(doc).created_ms)
        return [(creator, content, ms) for (creator, content), ms in out.items()]

    async def marks(self, content_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        cursor = self._marks.find({"_id": {"$in": list(content_ids)}})
        return {doc["_id"]: doc async for doc in cursor}

    async def raise_marks(self, content_id: str, marks: Mapping[str, int]) -> None:
        if marks:
            await self._marks.update_one({"_id": content_id}, {"$max": dict(marks)}, upsert=True)

    async def preferences(self, creator_id: str) -> Preferences:
        doc = await self._prefs.find_one({"_id": creator_id})
        if doc is None:
            return Preferences(creator_id)
        return Preferences(
            creator_id,
            frozenset(NotificationKind(k) for k in doc.get("muted_kinds", ())),
            frozenset(doc.get("muted_contents", ())[:MAX_MUTED_CONTENTS]),
        )

    async def save_preferences(self, prefs: Preferences) -> Preferences:
        await self._prefs.update_one(
            {"_id": prefs.creator_id},
            {
                "$set": {
                    "muted_kinds": sorted(k.value for k in prefs.muted_kinds),
                    "muted_contents": sorted(prefs.muted_contents),
                }
            },
            upsert=True,
        )
        return prefs

    async def expire(self, now: datetime, limit: int) -> int:
        cursor = self._n.find({"expires_at": {"$lt": now}}, {"_id": 1}).limit(limit)
        ids = [doc["_id"] async for doc in cursor]
        if not ids:
            return 0
        result = await self._n.delete_many({"_id": {"$in": ids}})
        return int(result.deleted_count)

    # --- the API ---------------------------------------------------------------------

    async def page(
        self, creator_id: str, first: int, before_seq: str | None, unread_only: bool
    ) -> list[Notification]:
        query: dict[str, Any] = {"creator_id": creator_id}
        if before_seq is not None:
            query["seq"] = {"$lt": before_seq}
        if unread_only:
            query["read_at"] = None
        cursor = self._n.find(query).sort("seq", DESCENDING).limit(first)
        return [from_doc(doc) async for doc in cursor]

    async def after(self, creator_id: str, after_seq: str, limit: int) -> list[Notification]:
        query = {"creator_id": creator_id, "seq": {"$gt": after_seq}}
        cursor = self._n.find(query).sort("seq", ASCENDING).limit(limit)
        return [from_doc(doc) async for doc in cursor]

    async def latest_seq(self, creator_id: str) -> str | None:
        cursor = self._n.find({"creator_id": creator_id}, {"seq": 1}).sort("seq", -1).limit(1)
        async for doc in cursor:
            return str(doc["seq"])
        return None

    async def get(self, notification_id: str) -> Notification | None:
        doc = await self._n.find_one({"_id": notification_id})
        return None if doc is None else from_doc(doc)

    async def unread_count(self, creator_id: str) -> int:
        return int(await self._n.count_documents({"creator_id": creator_id, "read_at": None}))

    async def mark_read(
        self, creator_id: str, ids: Sequence[str], up_to_seq: str | None, now: datetime
    ) -> int:
        which: list[dict[str, Any]] = []
        if ids:
            which.append({"_id": {"$in": list(ids)}})
        if up_to_seq is not None:
            which.append({"seq": {"$lte": up_to_seq}})
        if not which:
            return 0
        result = await self._n.update_many(
            {"creator_id": creator_id, "read_at": None, "$or": which},
            {"$set": {"read_at": now}},
        )
        return int(result.modified_count)
