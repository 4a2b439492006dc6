"""The outbox: events written in the same document change as the state they record.

MongoDB (and mongomock) give single-document atomicity without transactions,
so the state and the event that describes it can't be separated by a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.events import EngagementEvent


class MongoOutbox:
    def __init__(self, collection: Any) -> None:
        self._col = collection

    async def pending(self, older_than: datetime, limit: int) -> list[EngagementEvent]:
        cutoff = int(older_than.timestamp() * 1000)
        cursor = self._col.find({"outbox.occurred_at_ms": {"$lt": cutoff}}, {"outbox": 1}).limit(
            limit
        )
        out: list[EngagementEvent] = []
        async for doc in cursor:
            out.extend(
                EngagementEvent.from_dict(raw)
                for raw in doc.get("outbox", [])
                if raw["occurred_at_ms"] < cutoff
            )
        return out

    async def prune(self, events: Sequence[EngagementEvent]) -> int:
        if not events:
            return 0
        ids = [e.event_id for e in events]
        result = await self._col.update_many(
            {"outbox.event_id": {"$in": ids}},
            {"$pull": {"outbox": {"event_id": {"$in": ids}}}},
        )
        return int(result.modified_count)
