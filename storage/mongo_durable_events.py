"""The counted events MongoDB holds, for restoring counters from a snapshot.

After a Redis loss the event log is gone with it. What remains of every event is
in MongoDB: the outbox of the document it changed (reactions, view sessions) until
the archive has it, then the ``events`` archive (kept forever, or ARCHIVE_TTL_S).
The outbox relay prunes an entry only after the archive holds it, so an event
moves from the first to the second and never back: reading the outboxes first and
the archive second misses none (read the other way, one archived and pruned
between the two reads would be in neither).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ASCENDING

from domain.events import EngagementEvent

OUTBOX_INDEX = [("outbox.occurred_at_ms", ASCENDING)]

_FIELDS = {
    "event_id": 1,
    "kind": 1,
    "content_id": 1,
    "actor": 1,
    "occurred_at_ms": 1,
    "deltas": 1,
    "unique": 1,
}


def _counted(raws: Iterable[Mapping[str, Any]], after_ms: int) -> list[EngagementEvent]:
    out = []
    for raw in raws:
        if raw["occurred_at_ms"] > after_ms and (raw.get("deltas") or raw.get("unique")):
            out.append(EngagementEvent.from_dict(raw))
    return out


class MongoDurableEvents:
    def __init__(self, db: Any) -> None:
        self._outboxes = [db["reactions"], db["view_sessions"]]
        self._archive = db["events"]

    async def after(self, content_id: str, after_ms: int) -> list[EngagementEvent]:
        events: list[EngagementEvent] = []
        seen: set[str] = set()
        for col in self._outboxes:
            # By the outbox index (storage/mongo.py), not by content: a content may
            # have a million documents, and only a few have events waiting.
            query = {"outbox.occurred_at_ms": {"$gt": after_ms}, "content_id": content_id}
            async for doc in col.find(query, {"outbox": 1}).hint(OUTBOX_INDEX):
                events.extend(_counted(doc.get("outbox", ()), after_ms))
        seen.update(e.event_id for e in events)
        query = {"content_id": content_id, "occurred_at_ms": {"$gt": after_ms}}
        async for raw in self._archive.find(query, _FIELDS):
            if raw["event_id"] not in seen:
                events.extend(_counted([raw], after_ms))
        return events
