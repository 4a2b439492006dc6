from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from domain.counters import add
from domain.events import EngagementEvent
from domain.integrity import Tier, reaction_counters, tier_from
from domain.ports import ReactionRecord
from domain.reactions import ReactionType

ACTIVE = "active"
REMOVED = "removed"


def reaction_id(content_id: str, user_id: str) -> str:
    """The document id of one viewer's reaction to one content.

    Derived from the pair (length-prefixed, so no two pairs collide), it makes the
    pair unique by construction and turns lookups into _id lookups: a viewer's
    reactions to a feed of N cards is one ``_id: {$in: [...]}`` query. On a sharded
    cluster (shard key: hashed content_id) a pair always lives on one shard, so the
    _id uniqueness holds there too.
    """
    return f"{len(content_id)}:{content_id}:{user_id}"


def _record(doc: dict[str, Any]) -> ReactionRecord:
    reaction = doc.get("reaction")
    return ReactionRecord(
        content_id=doc["content_id"],
        user_id=doc["user_id"],
        reaction=ReactionType(reaction) if reaction and doc["status"] == ACTIVE else None,
        version=int(doc["version"]),
        updated_at=doc["updated_at"],
        pending=tuple(EngagementEvent.from_dict(e) for e in doc.get("outbox", ())),
        tier=tier_from(doc.get("tier")),
        request=(req["id"], req["fp"]) if (req := doc.get("request")) else None,
    )


class MongoReactions:
    def __init__(self, db: Any) -> None:
        self._col = db["reactions"]

    async def get(self, content_id: str, user_id: str) -> ReactionRecord | None:
        # content_id beside _id: on a cluster sharded by content_id (docs/SCALING.md)
        # the query then goes to one shard instead of every shard.
        doc = await self._col.find_one(
            {"_id": reaction_id(content_id, user_id), "content_id": content_id}
        )
        return _record(doc) if doc else None

    async def save(
        self, record: ReactionRecord, expected_version: int, event: EngagementEvent
    ) -> bool:
        state = {
            "reaction": record.reaction.value if record.reaction else None,
            "status": ACTIVE if record.reaction else REMOVED,
            "updated_at": record.updated_at,
            "version": record.version,
            "tier": record.tier.value,
            # Cleared by a write without a requestId: only this version's request replays.
            "request": {"id": record.request[0], "fp": record.request[1]}
            if record.request
            else None,
        }
        if expected_version == 0:
            try:
                await self._col.insert_one(
                    {
                        "_id": reaction_id(record.content_id, record.user_id),
                        "content_id": record.content_id,
                        "user_id": record.user_id,
                        "created_at": record.updated_at,
                        **state,
                        "outbox": [event.to_dict()],
                    }
                )
            except DuplicateKeyError:
                return False  # someone else created it first: re-read and retry
            return True
        result = await self._col.update_one(
            {
                "_id": reaction_id(record.content_id, record.user_id),
                "content_id": record.content_id,
                "version": expected_version,
            },
            {"$set": state, "$push": {"outbox": event.to_dict()}},
        )
        return bool(result.matched_count)

    async def viewer_reactions(
        self, user_id: str, content_ids: Sequence[str]
    ) -> dict[str, ReactionType]:
        ids = [reaction_id(cid, user_id) for cid in content_ids]
        cursor = self._col.find(
            {"_id": {"$in": ids}, "content_id": {"$in": list(content_ids)}, "status": ACTIVE},
            {"content_id": 1, "reaction": 1},
        )
        return {doc["content_id"]: ReactionType(doc["reaction"]) async for doc in cursor}

    async def reactors(
        self,
        content_id: str,
        reaction: ReactionType | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[ReactionRecord]:
        query: dict[str, Any] = {"content_id": content_id, "status": ACTIVE}
        if reaction is not None:
            query["reaction"] = reaction.value
        if before is not None:
            at, user_id = before
            query["$or"] = [
                {"updated_at": {"$lt": at}},
                {"updated_at": at, "user_id": {"$lt": user_id}},
            ]
        cursor = (
            self._col.find(query, {"outbox": 0})
            .sort([("updated_at", -1), ("user_id", -1)])
            .limit(limit)
        )
        return [_record(doc) async for doc in cursor]

    async def recount(self, content_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Each active reaction's contribution in its tier (domain/integrity.py)."""
        pipeline = [
            {"$match": {"content_id": {"$in": list(content_ids)}, "status": ACTIVE}},
            {
                "$group": {
                    "_id": {"c": "$content_id", "r": "$reaction", "t": "$tier"},
                    "n": {"$sum": 1},
                }
            },
        ]
        out: dict[str, dict[str, int]] = {cid: {} for cid in content_ids}
        async for row in self._col.aggregate(pipeline):
            key, n = row["_id"], int(row["n"])
            one = reaction_counters(key["r"], tier_from(key.get("t")))
            out[key["c"]] = add(out[key["c"]], {f: v * n for f, v in one.items()})
        return out

    async def of_user(self, user_id: str, after: str | None, limit: int) -> list[ReactionRecord]:
        """A user's reaction documents (removed ones too), by content id, a page at a time."""
        query: dict[str, Any] = {"user_id": user_id}
        if after is not None:
            query["content_id"] = {"$gt": after}
        cursor = self._col.find(query, {"outbox": 0}).sort("content_id", 1).limit(limit)
        return [_record(doc) async for doc in cursor]

    async def retier(
        self, record: ReactionRecord, tier: Tier, event: EngagementEvent | None
    ) -> bool:
        """Set the document's tier, guarded by its version (which moves on), with the
        event of the change in its outbox; False when it changed meanwhile."""
        update: dict[str, Any] = {"$set": {"tier": tier.value, "version": record.version + 1}}
        if event is not None:
            update["$push"] = {"outbox": event.to_dict()}
        result = await self._col.update_one(
            {"_id": reaction_id(record.content_id, record.user_id), "version": record.version},
            update,
        )
        return bool(result.matched_count)

    async def unique_members(self, content_ids: Sequence[str]) -> dict[str, list[str]]:
        return {}
