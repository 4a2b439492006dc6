"""The outbox: events written in the same document change as the state they record.

MongoDB (and mongomock) give single-document atomicity without transactions,
so the state and the event that describes it can't be separated by a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from domain.events import EngagementEvent
from domain.ports import OutboxEntry


class MongoOutbox:
    def __init__(self, collection: Any) -> None:
        self._col = collection

    async def pending(self, older_than: datetime, limit: int) -> list[OutboxEntry]:
        cutoff = int(older_than.timestamp() * 1000)
        query = {"outbox.occurred_at_ms": {"$lt": cutoff}}
        cursor = self._col.find(query, {"outbox": 1}).limit(limit)
        out: list[OutboxEntry] = []
        async for doc in cursor:
            out.extend(
                OutboxEntry(doc["_id"], EngagementEvent.from_dict(raw))
                for raw in doc.get("outbox", [])
                if raw["occurred_at_ms"] < cutoff
            )
        return out

    async def prune(self, entries: Sequence[OutboxEntry]) -> int:
        if not entries:
            return 0
        by_doc: dict[Any, list[str]] = {}
        for e in entries:
            by_doc.setdefault(e.doc_id, []).append(e.event.event_id)
        # One round trip; each document by _id (an index lookup) pulls only its
        # own events, not a test against every id of the batch per entry.
        result = await self._col.bulk_write(
            [
                UpdateOne({"_id": doc_id}, {"$pull": {"outbox": {"event_id": {"$in": ids}}}})
                for doc_id, ids in by_doc.items()
            ],
            ordered=False,
        )
        return int(result.modified_count)
