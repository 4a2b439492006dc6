"""Retention for the in-process store, which enforces no TTL of its own.

With ``MONGODB_URL`` unset every document lives in this process's heap, so the
embedded mode bounds what it keeps: raw view events (``view_events``), the
``events`` archive and view sessions older than the retention are removed, a
page at a time, oldest first.

Counters are derived from MongoDB, so retention must not remove what a recount
needs. Uncounted sessions are not part of any count and are deleted. Counted
sessions are *folded* first: their number and viewer keys are added to the
content's ``view_tallies`` document (one per content, a few bytes per viewer
instead of a whole session), and the recount of views is tallies plus the
sessions still stored (storage/mongo_view_sessions.py), so the reconciler sees
the same truth before and after a fold. The fold (one bulk update of tallies,
then one delete) and a recount cannot interleave here: the in-process store
answers without ever yielding to the event loop. That is also why folding is
only done with the in-process store: with a real MongoDB, counted sessions
stay, and TTL indexes expire the rest (storage/mongo.py).

A late event for a session removed here starts a new session (the viewer's
dedupe mark in Redis still keeps it from counting twice within its window).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateOne

from domain.analytics import RETENTION_MS
from domain.counters import add
from domain.integrity import Tier, tier_from, view_counters
from domain.webhooks import DeliveryStatus
from storage.mongo_analytics import COLLECTIONS
from storage.mongo_view_sessions import TALLIES
from storage.mongo_webhooks import DELIVERIES

PENDING = DeliveryStatus.PENDING.value


class MongoRetention:
    def __init__(self, db: Any) -> None:
        self._raw_views = db["view_events"]
        self._deliveries = db[DELIVERIES]
        self._events = db["events"]
        self._sessions = db["view_sessions"]
        self._tallies = db[TALLIES]
        self._analytics = {
            g: (db[name], keep)
            for g, name in COLLECTIONS.items()
            if (keep := RETENTION_MS[g]) is not None
        }

    async def _delete_older(self, col: Any, before: datetime, limit: int) -> int:
        # archived_at: when stored (the field a server's TTL index would use too).
        cursor = col.find({"archived_at": {"$lt": before}}, {"_id": 1}).limit(limit)
        ids = [doc["_id"] async for doc in cursor]
        if not ids:
            return 0
        return int((await col.delete_many({"_id": {"$in": ids}})).deleted_count)

    async def expire_raw_views(self, before: datetime, limit: int) -> int:
        return await self._delete_older(self._raw_views, before, limit)

    async def expire_events(self, before: datetime, limit: int) -> int:
        return await self._delete_older(self._events, before, limit)

    async def expire_analytics(self, now: datetime, limit: int) -> int:
        """Minute and hour buckets past their retention (48 h, 400 days), as the TTL
        indexes of a real server expire them; day buckets are kept."""
        removed = 0
        for col, keep_ms in self._analytics.values():
            before = now - timedelta(milliseconds=keep_ms)
            cursor = col.find({"start": {"$lt": before}}, {"_id": 1}).limit(limit - removed)
            ids = [doc["_id"] async for doc in cursor]
            if ids:
                removed += int((await col.delete_many({"_id": {"$in": ids}})).deleted_count)
            if removed >= limit:
                break
        return removed

    async def expire_webhook_deliveries(self, before: datetime, limit: int) -> int:
        # Pending ones stay whatever their age: they are still being retried.
        query = {"status": {"$ne": PENDING}, "created_at": {"$lt": before}}
        cursor = self._deliveries.find(query, {"_id": 1}).limit(limit)
        ids = [doc["_id"] async for doc in cursor]
        if not ids:
            return 0
        return int((await self._deliveries.delete_many({"_id": {"$in": ids}})).deleted_count)

    async def fold_sessions(self, before: datetime, limit: int) -> int:
        """Fold (counted) and delete ended sessions whose last event is older than
        ``before``. A session with outbox entries is left for the outbox relay (it
        may still have to republish its event); one not ended yet is left for the
        session closer (workers/session_closer.py), whose end event analytics needs."""
        query = {
            "ended": True,
            "last_event_at": {"$lt": before},
            "outbox.0": {"$exists": False},
        }
        projection = {"content_id": 1, "counted": 1, "viewer_key": 1, "tier": 1}
        cursor = self._sessions.find(query, projection).limit(limit)
        ids: list[Any] = []
        counts: dict[str, dict[str, int]] = {}
        viewers: dict[str, set[str]] = {}
        async for doc in cursor:
            ids.append(doc["_id"])
            if doc.get("counted"):
                cid = doc["content_id"]
                # Each in its integrity tier (domain/integrity.py), as a recount of
                # the session would count it: the tallies keep the counters, not the
                # actors, so a folded session can no longer be re-tiered.
                tier = tier_from(doc.get("tier"))
                counts[cid] = add(counts.get(cid, {}), view_counters(True, tier))
                if doc.get("viewer_key") and tier is not Tier.EXCLUDED:
                    viewers.setdefault(cid, set()).add(doc["viewer_key"])
        if not ids:
            return 0
        if counts:
            await self._tallies.bulk_write(
                [
                    UpdateOne(
                        {"_id": cid},
                        {
                            "$inc": inc,
                            "$addToSet": {"viewers": {"$each": sorted(viewers.get(cid, ()))}},
                        },
                        upsert=True,
                    )
                    for cid, inc in counts.items()
                ],
                ordered=False,
            )
        return int((await self._sessions.delete_many({"_id": {"$in": ids}})).deleted_count)
