"""The outbox: events written in the same document change as the state they record.

MongoDB (and mongomock) give single-document atomicity without transactions,
so the state and the event that describes it can't be separated by a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

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
        ids = [e.event.event_id for e in entries]
        # One round trip, documents by _id (an index lookup). Batches are small
        # (the relay's), so testing each entry against the batch's ids is cheap;
        # a bulk write of one update per document made mongomock build ~14
        # cyclic objects per document, i.e. work for the cyclic GC.
        result = await self._col.update_many(
            {"_id": {"$in": list({e.doc_id for e in entries})}},
            {"$pull": {"outbox": {"event_id": {"$in": ids}}}},
        )
        return int(result.modified_count)
