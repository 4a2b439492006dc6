"""``view_sessions``: one document per view session, written in bulk per batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from domain.counters import VIEWS, add
from domain.events import VIEW, EngagementEvent
from domain.integrity import (
    DOUBTFUL_VIEWS,
    SUSPECT_VIEWS,
    Tier,
    tier_from,
    tier_of_view,
    view_counters,
)
from domain.ports import StoredSession, TieredSession
from domain.view_policy import ClientPlatform, ViewSource
from domain.view_sessions import SessionStatus, ViewSession
from storage.mongo import IDLE_INDEX, duplicate_key_errors

TALLIES = "view_tallies"
EXCLUDED = Tier.EXCLUDED.value
# What the tallies of folded sessions hold (storage/mongo_retention.py).
TALLIED = (VIEWS, DOUBTFUL_VIEWS, SUSPECT_VIEWS)
_FIELDS = [f.name for f in fields(ViewSession)]


def to_doc(session: ViewSession) -> dict[str, Any]:
    """Every field of the session (None where unset), for a ``$set`` of its state."""
    s = session
    return {
        "session_id": s.session_id,
        "content_id": s.content_id,
        "viewer_key": s.viewer_key,
        "device_id": s.device_id,
        "started_at": s.started_at,
        "last_event_at": s.last_event_at,
        "watched_ms": s.watched_ms,
        "position_ms": s.position_ms,
        "source": None if s.source is None else s.source.value,
        "platform": None if s.platform is None else s.platform.value,
        "ended": s.ended,
        "counted": s.counted,
        "counted_at": s.counted_at,
        "rule": s.rule,
        "reason": s.reason,
        "flags": list(s.flags),
        "recent_event_ids": list(s.recent_event_ids),
        "events": s.events,
        "status": s.status.value,
        "qualified_ms": s.qualified_ms,
        "rejected_reason": s.rejected_reason,
        "region": s.region,
    }


def new_doc(
    session: ViewSession, version: int, write_id: str, outbox: list[dict[str, Any]]
) -> dict[str, Any]:
    """The first document of a session: unset fields and empty lists are left out.

    Most sessions are written once (a feed impression, a short watch), and in
    the embedded mode every field costs mongomock work on each write and read;
    a real server stores less too. ``from_doc`` reads a missing field as unset,
    ``$push`` creates the outbox when the session counts later, and updates
    ``$set`` every field.
    """
    doc: dict[str, Any] = {"_id": session.session_id}
    for name, value in to_doc(session).items():
        if value is not None and value != [] and name != "session_id":
            doc[name] = value
    if session.region == "unknown":
        del doc["region"]  # read back as "unknown", like documents from before regions
    doc["version"] = version
    doc["write_id"] = write_id
    if outbox:
        doc["outbox"] = outbox
    return doc


def from_doc(doc: dict[str, Any]) -> ViewSession:
    values: dict[str, Any] = {name: doc.get(name) for name in _FIELDS}
    # Documents written whole before new_doc carry session_id; newer ones only _id.
    values["session_id"] = doc["_id"]
    values["flags"] = tuple(values["flags"] or ())
    values["recent_event_ids"] = tuple(values["recent_event_ids"] or ())
    values["source"] = ViewSource(values["source"]) if values["source"] else None
    values["platform"] = ClientPlatform(values["platform"]) if values["platform"] else None
    values["status"] = SessionStatus(values["status"])
    # Sessions written before regions were recorded.
    values["region"] = values["region"] or "unknown"
    return ViewSession(**values)


class MongoViewSessions:
    def __init__(self, db: Any) -> None:
        self._col = db["view_sessions"]
        # Counted sessions that retention folded away (only with the in-process
        # store, see storage/mongo_retention.py): per content, how many and by whom.
        # A recount is tallies plus the sessions still stored.
        self._tallies = db[TALLIES]

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
            entries = [e.to_dict() for e in outbox]
            # A session is tiered when it counts, in the tier its count was written in
            # (domain/integrity.py): the count and its tier land in one write.
            tier = next((tier_of_view(e.deltas) for e in outbox if e.kind == VIEW), None)
            if version == 0:
                doc = new_doc(session, 1, write_id, entries)
                if tier is not None and tier is not Tier.TRUSTED:
                    doc["tier"] = tier.value
                ops.append(doc)
                continue
            state = {**to_doc(session), "version": version + 1, "write_id": write_id}
            if tier is not None:
                state["tier"] = tier.value
            update: dict[str, Any] = {"$set": state}
            if entries:
                update["$push"] = {"outbox": {"$each": entries}}
            ops.append(UpdateOne({"_id": session.session_id, "version": version}, update))
        applied = 0
        try:
            if all(isinstance(op, dict) for op in ops):
                # Only new sessions (the common batch): insert_many is the same one
                # unordered bulk on a server, and much lighter per document in mongomock.
                applied = len((await self._col.insert_many(ops, ordered=False)).inserted_ids)
            else:
                bulk = [InsertOne(op) if isinstance(op, dict) else op for op in ops]
                result = await self._col.bulk_write(bulk, ordered=False)
                applied = result.inserted_count + result.matched_count
        except BulkWriteError as exc:
            duplicate_key_errors(exc)
            applied = int(exc.details.get("nInserted", 0)) + int(exc.details.get("nMatched", 0))
        if applied == len(writes):
            return set()
        ids = [s.session_id for s, _, _ in writes]
        ours = {
            doc["_id"]
            async for doc in self._col.find({"_id": {"$in": ids}, "write_id": write_id}, {"_id": 1})
        }
        return set(ids) - ours

    async def ensure_idle_index(self) -> None:
        await self._col.create_indexes([IDLE_INDEX])

    async def idle(self, before: datetime, limit: int) -> list[StoredSession]:
        """Up to ``limit`` sessions not ended whose last event is older than ``before``."""
        query = {"ended": False, "last_event_at": {"$lt": before}}
        cursor = self._col.find(query, {"outbox": 0}).limit(limit)
        return [StoredSession(from_doc(doc), int(doc["version"])) async for doc in cursor]

    async def recount(self, content_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Each counted session's contribution in its tier (domain/integrity.py), plus
        the tallies of folded sessions (counted as trusted: folding keeps no actor)."""
        ids = list(content_ids)
        pipeline = [
            {"$match": {"content_id": {"$in": ids}, "counted": True}},
            {"$group": {"_id": {"c": "$content_id", "t": "$tier"}, "n": {"$sum": 1}}},
        ]
        out: dict[str, dict[str, int]] = {cid: {} for cid in ids}
        async for row in self._col.aggregate(pipeline):
            key, n = row["_id"], int(row["n"])
            one = view_counters(True, tier_from(key.get("t")))
            out[key["c"]] = add(out[key["c"]], {f: v * n for f, v in one.items()})
        async for doc in self._tallies.find({"_id": {"$in": ids}}, {"viewers": 0}):
            tallied = {f: int(doc.get(f, 0)) for f in TALLIED if doc.get(f)}
            out[doc["_id"]] = add(out[doc["_id"]], tallied)
        return out

    async def unique_members(self, content_ids: Sequence[str]) -> dict[str, list[str]]:
        ids = list(content_ids)
        pipeline = [
            # An excluded viewer is not among the public unique viewers.
            {"$match": {"content_id": {"$in": ids}, "counted": True, "tier": {"$ne": EXCLUDED}}},
            {"$group": {"_id": "$content_id", "v": {"$addToSet": "$viewer_key"}}},
        ]
        out: dict[str, set[str]] = {}
        async for row in self._col.aggregate(pipeline):
            out.setdefault(row["_id"], set()).update(row["v"])
        async for doc in self._tallies.find({"_id": {"$in": ids}}, {"viewers": 1}):
            out.setdefault(doc["_id"], set()).update(doc.get("viewers", ()))
        return {cid: sorted(keys) for cid, keys in out.items()}

    async def counted_of_viewer(
        self, viewer_key: str, after: str | None, limit: int
    ) -> list[TieredSession]:
        """A viewer's counted sessions, by session id, a page at a time."""
        query: dict[str, Any] = {"viewer_key": viewer_key, "counted": True}
        if after is not None:
            query["_id"] = {"$gt": after}
        projection = {"content_id": 1, "version": 1, "tier": 1, "counted_at": 1}
        cursor = self._col.find(query, projection).sort("_id", 1).limit(limit)
        return [
            TieredSession(
                doc["_id"],
                doc["content_id"],
                viewer_key,
                int(doc["version"]),
                tier_from(doc.get("tier")),
                doc.get("counted_at"),
            )
            async for doc in cursor
        ]

    async def retier_many(
        self, moves: Sequence[tuple[TieredSession, EngagementEvent]], tier: Tier
    ) -> set[str]:
        """Set counted sessions' tier, each guarded by its version (which moves on),
        with the event of the change in its outbox, in one unordered bulk write;
        returns the ids that changed meanwhile (not written)."""
        if not moves:
            return set()
        # Tells our writes apart from concurrent ones, as save_many does.
        write_id = uuid.uuid4().hex
        ops = [
            UpdateOne(
                {"_id": session.session_id, "version": session.version},
                {
                    "$set": {
                        "tier": tier.value,
                        "version": session.version + 1,
                        "write_id": write_id,
                    },
                    "$push": {"outbox": event.to_dict()},
                },
            )
            for session, event in moves
        ]
        result = await self._col.bulk_write(ops, ordered=False)
        if result.matched_count == len(ops):
            return set()
        ids = [session.session_id for session, _ in moves]
        ours = {
            doc["_id"]
            async for doc in self._col.find({"_id": {"$in": ids}, "write_id": write_id}, {"_id": 1})
        }
        return set(ids) - ours
