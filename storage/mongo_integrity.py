"""``actors`` (each actor's trust, tier and verdict) and ``integrity_audit`` (every
decision, appended), and the documents re-tiering goes through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel

from domain.events import EngagementEvent
from domain.integrity import Tier, tier_from
from domain.ports import ActorRecord, AuditEntry, ReactionRecord, TieredSession
from storage.mongo_reactions import MongoReactions
from storage.mongo_view_sessions import MongoViewSessions

ACTORS = "actors"
AUDIT = "integrity_audit"
INDEXES = {ACTORS: [IndexModel([("tier", ASCENDING), ("_id", ASCENDING)], name="tier")]}


async def ensure_integrity_indexes(db: Any) -> None:
    for name, indexes in INDEXES.items():
        await db[name].create_indexes(indexes)


def _actor(doc: dict[str, Any]) -> ActorRecord:
    return ActorRecord(
        actor=doc["_id"],
        trust=float(doc.get("trust", 1.0)),
        tier=tier_from(doc.get("tier")),
        verdict=str(doc.get("verdict", "AUTO")),
        reasons=tuple(doc.get("reasons", ())),
        evidence=dict(doc.get("evidence") or {}),
        updated_at=doc.get("updated_at"),
        note=doc.get("note"),
    )


def _entry(doc: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        entry_id=doc["_id"],
        actor=doc["actor"],
        rule=doc["rule"],
        evidence=dict(doc.get("evidence") or {}),
        trust_before=float(doc["trust_before"]),
        trust_after=float(doc["trust_after"]),
        tier_before=tier_from(doc["tier_before"]),
        tier_after=tier_from(doc["tier_after"]),
        verdict=doc["verdict"],
        note=doc.get("note"),
        by=doc["by"],
        at=doc["at"],
    )


class MongoActors:
    def __init__(self, db: Any) -> None:
        self._actors = db[ACTORS]
        self._audit = db[AUDIT]

    async def get_many(self, actors: Sequence[str]) -> dict[str, ActorRecord]:
        cursor = self._actors.find({"_id": {"$in": list(actors)}})
        return {doc["_id"]: _actor(doc) async for doc in cursor}

    async def save(self, record: ActorRecord, audit: AuditEntry | None) -> None:
        # The audit entry first: a crash between the two leaves a decision on record
        # that the next assessment makes again, never a state nobody can explain.
        if audit is not None:
            await self._audit.insert_one(
                {
                    "_id": audit.entry_id,
                    "actor": audit.actor,
                    "rule": audit.rule,
                    "evidence": dict(audit.evidence),
                    "trust_before": audit.trust_before,
                    "trust_after": audit.trust_after,
                    "tier_before": audit.tier_before.value,
                    "tier_after": audit.tier_after.value,
                    "verdict": audit.verdict,
                    "note": audit.note,
                    "by": audit.by,
                    "at": audit.at,
                }
            )
        await self._actors.update_one(
            {"_id": record.actor},
            {
                "$set": {
                    "trust": record.trust,
                    "tier": record.tier.value,
                    "verdict": record.verdict,
                    "reasons": list(record.reasons),
                    "evidence": dict(record.evidence),
                    "updated_at": record.updated_at,
                    "note": record.note,
                }
            },
            upsert=True,
        )

    async def cases(self, first: int, before: str | None) -> list[AuditEntry]:
        query: dict[str, Any] = {} if before is None else {"_id": {"$lt": before}}
        cursor = self._audit.find(query).sort("_id", -1).limit(first)
        return [_entry(doc) async for doc in cursor]

    async def not_trusted(self, after: str | None, limit: int) -> list[ActorRecord]:
        query: dict[str, Any] = {"tier": {"$in": [Tier.DOUBTFUL.value, Tier.EXCLUDED.value]}}
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self._actors.find(query).sort("_id", 1).limit(limit)
        return [_actor(doc) async for doc in cursor]


class MongoRetiering:
    """Re-tiering over the reactions and view sessions repositories."""

    def __init__(self, reactions: MongoReactions, sessions: MongoViewSessions) -> None:
        self._reactions = reactions
        self._sessions = sessions

    async def reactions_of(
        self, user_id: str, after: str | None, limit: int
    ) -> list[ReactionRecord]:
        return await self._reactions.of_user(user_id, after, limit)

    async def reaction(self, content_id: str, user_id: str) -> ReactionRecord | None:
        return await self._reactions.get(content_id, user_id)

    async def retier_reaction(
        self, record: ReactionRecord, tier: Tier, event: EngagementEvent | None
    ) -> bool:
        return await self._reactions.retier(record, tier, event)

    async def counted_sessions_of(
        self, viewer_key: str, after: str | None, limit: int
    ) -> list[TieredSession]:
        return await self._sessions.counted_of_viewer(viewer_key, after, limit)

    async def retier_sessions(
        self, moves: Sequence[tuple[TieredSession, EngagementEvent]], tier: Tier
    ) -> set[str]:
        return await self._sessions.retier_many(moves, tier)
