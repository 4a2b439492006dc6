"""``view_sessions``: one document per view session, written in bulk per batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from domain.counters import VIEWS
from domain.events import EngagementEvent
from domain.ports import StoredSession
from domain.views import ClientPlatform, SessionStatus, ViewSession, ViewSource

DUPLICATE_KEY = 11000
_FIELDS = [f.name for f in fields(ViewSession)]


def to_doc(session: ViewSession) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(session, name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, ViewSource | ClientPlatform | SessionStatus):
            value = value.value
        doc[name] = value
    return doc


def from_doc(doc: dict[str, Any]) -> ViewSession:
    values: dict[str, Any] = {name: doc.get(name) for name in _FIELDS}
    values["flags"] = tuple(values["flags"] or ())
    values["recent_event_ids"] = tuple(values["recent_event_ids"] or ())
    values["source"] = ViewSource(values["source"]) if values["source"] else None
    values["platform"] = ClientPlatform(values["platform"]) if values["platform"] else None
    values["status"] = SessionStatus(values["status"])
    return ViewSession(**values)


class MongoViewSessions:
    def __init__(self, db: Any) -> None:
        self._col = db["view_sessions"]

    async def get_many(self, session_ids: Sequence[str]) -> dict[str, StoredSession]:
        cursor = self._col.find({"_id": {"$in": list(session_ids)}}, {"outbox": 0})
        return {
            doc["_id"]: StoredSession(from_doc(doc), int(doc["version"])) async for doc in cursor
        }

    async def save_many(
        self, writes: Sequence[tuple[ViewSession, int, list[EngagementEvent]]]
    ) -> set[str]:
        if not writes:
            return set()
        # Tells our write apart from a concurrent one that set the same version.
        write_id = uuid.uuid4().hex
        ops: list[Any] = []
        for session, version, outbox in writes:
            state = {**to_doc(session), "version": version + 1, "write_id": write_id}
            entries = [e.to_dict() for e in outbox]
            if version == 0:
                ops.append(InsertOne({"_id": session.session_id, **state, "outbox": entries}))
                continue
            update: dict[str, Any] = {"$set": state}
            if entries:
                update["$push"] = {"outbox": {"$each": entries}}
            ops.append(UpdateOne({"_id": session.session_id, "version": version}, update))
        applied = 0
        try:
            result = await self._col.bulk_write(ops, ordered=False)
            applied = result.inserted_count + result.matched_count
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
            applied = int(exc.details.get("nInserted", 0)) + int(exc.details.get("nMatched", 0))
        if applied == len(writes):
            return set()
        ids = [s.session_id for s, _, _ in writes]
        ours = {
            doc["_id"]
            async for doc in self._col.find({"_id": {"$in": ids}, "write_id": write_id}, {"_id": 1})
        }
        return set(ids) - ours

    async def recount(self, content_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        pipeline = [
            {"$match": {"content_id": {"$in": list(content_ids)}, "counted": True}},
            {"$group": {"_id": "$content_id", "n": {"$sum": 1}}},
        ]
        out: dict[str, dict[str, int]] = {cid: {} for cid in content_ids}
        async for row in self._col.aggregate(pipeline):
            out[row["_id"]][VIEWS] = int(row["n"])
        return out

    async def unique_members(self, content_id: str) -> list[str]:
        return sorted(
            await self._col.distinct("viewer_key", {"content_id": content_id, "counted": True})
        )
