"""The append-only ``events`` collection: audit, replay, and the outbox's receipt."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from domain.events import RAW_VIEW, EngagementEvent
from storage.mongo import duplicate_key_errors


class MongoEventArchive:
    def __init__(self, db: Any) -> None:
        self._col = db["events"]
        self._raw_views = db["view_events"]

    async def store(self, events: Sequence[EngagementEvent]) -> int:
        """Insert; an event id seen before is skipped, so replays are harmless.

        Raw view events (the high-volume part) are kept as one document per
        batch in ``view_events``; every other event is one ``events`` document.
        """
        raw = [e.to_dict() for e in events if e.kind == RAW_VIEW]
        rest = [e for e in events if e.kind != RAW_VIEW]
        stored = await self.store_raw_views(raw) if raw else 0
        if not rest:
            return stored
        return stored + await self._store_each(rest)

    async def store_raw_views(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Raw view events given as ``EngagementEvent.to_dict()`` dicts: one document."""
        if not events:
            return 0
        ids = sorted(e["event_id"] for e in events)
        # The same batch redelivered gets the same id and is skipped.
        digest = hashlib.blake2b("\x00".join(ids).encode(), digest_size=16).hexdigest()
        try:
            await self._raw_views.insert_one(
                {
                    "_id": digest,
                    "first_ms": min(e["occurred_at_ms"] for e in events),
                    # For a TTL index (ARCHIVE_TTL_S): a TTL needs a date field.
                    "archived_at": datetime.now(UTC),
                    "events": list(events),
                }
            )
        except DuplicateKeyError:
            return 0
        return len(events)

    async def _store_each(self, events: Sequence[EngagementEvent]) -> int:
        now = datetime.now(UTC)
        docs = [{"_id": e.event_id, **e.to_dict(), "archived_at": now} for e in events]
        try:
            result = await self._col.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            duplicate_key_errors(exc)
            return int(exc.details.get("nInserted", 0))
        return len(result.inserted_ids)

    async def existing(self, event_ids: Sequence[str]) -> set[str]:
        cursor = self._col.find({"_id": {"$in": list(event_ids)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}
