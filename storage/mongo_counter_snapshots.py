"""``counter_snapshots``: one document per content, the counters and HyperLogLog
registers of its latest snapshot (domain/counter_snapshots.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.errors import DuplicateKeyError

from domain.ports import CounterSnapshot

COLLECTION = "counter_snapshots"
FORMAT = 1


class MongoCounterSnapshots:
    def __init__(self, db: Any) -> None:
        self._col = db[COLLECTION]

    async def get_many(self, content_ids: Sequence[str]) -> dict[str, CounterSnapshot]:
        cursor = self._col.find({"_id": {"$in": list(content_ids)}})
        out: dict[str, CounterSnapshot] = {}
        async for doc in cursor:
            # A format this code does not know is no snapshot to it: the recount stands in.
            if doc.get("version") != FORMAT:
                continue
            out[doc["_id"]] = CounterSnapshot(
                doc["_id"],
                {str(k): int(v) for k, v in doc["counters"].items()},
                bytes(doc["registers"]),
                int(doc["watermark_ms"]),
                int(doc["taken_ms"]),
                int(doc["version"]),
            )
        return out

    async def save(self, snapshot: CounterSnapshot) -> bool:
        doc = {
            "_id": snapshot.content_id,
            "counters": dict(snapshot.counters),
            "registers": snapshot.registers,
            "watermark_ms": snapshot.watermark_ms,
            "taken_ms": snapshot.taken_ms,
            "version": FORMAT,
        }
        try:
            # Only over an older one: two snapshotters never move a snapshot back.
            await self._col.replace_one(
                {"_id": snapshot.content_id, "watermark_ms": {"$lte": snapshot.watermark_ms}},
                doc,
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True
