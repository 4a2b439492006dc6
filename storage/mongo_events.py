"""The append-only ``events`` collection: audit, replay, and the outbox's receipt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.errors import BulkWriteError

from domain.events import EngagementEvent

DUPLICATE_KEY = 11000


class MongoEventArchive:
    def __init__(self, db: Any) -> None:
        self._col = db["events"]

    async def store(self, events: Sequence[EngagementEvent]) -> int:
        """Insert; an event id seen before is skipped, so replays are harmless."""
        if not events:
            return 0
        docs = [{"_id": e.event_id, **e.to_dict()} for e in events]
        try:
            result = await self._col.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != DUPLICATE_KEY for err in errors):
                raise
            return int(exc.details.get("nInserted", 0))
        return len(result.inserted_ids)

    async def existing(self, event_ids: Sequence[str]) -> set[str]:
        cursor = self._col.find({"_id": {"$in": list(event_ids)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}
