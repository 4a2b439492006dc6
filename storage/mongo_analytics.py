"""Analytics rollups in MongoDB: one collection per granularity, one document per
(scope, bucket), additive counters applied effectively once.

A document: ``_id`` "<scope>|<start ms>", ``scope``, ``start`` (a date, for the
TTL index), ``creator`` (content scopes: the creator top lists group these), the
counters as nested fields (``platform: {IOS: {views: 3}}`` from the flat path
``platform.IOS.views``), ``seen``: the guard, and ``v``: a token (an ObjectId)
set anew by every write, which readers check their cached copies against
(storage/bucket_cache.py).

The guard. Every write of a batch to a bucket is one upsert filtered on
``seen: {$nin: <the batch's guard tokens for it>}`` that pushes those tokens and
keeps the last GUARD_SIZE. If the bucket saw one of them already, the filter
misses, the upsert tries to insert the existing ``_id`` and fails with a
duplicate key: that bucket is then redone token by token, each write filtered on
``seen: {$ne: token}``, where a duplicate key means "applied already". So a batch
applied here whose ids did not reach the applied set (a crash in between) is not
applied twice when it comes again, as long as fewer than GUARD_SIZE tokens
reached that bucket in the meantime (workers/analytics.py keeps each write's
share of that small).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError

from domain.analytics import (
    RETENTION_MS,
    BucketDelta,
    BucketKey,
    Fold,
    Granularity,
    add_counters,
    at_ms,
)
from domain.analytics_sums import flat
from storage.bucket_cache import BucketCache
from storage.mongo import duplicate_key_errors

COLLECTIONS: dict[Granularity, str] = {
    Granularity.MINUTE: "analytics_minute",
    Granularity.HOUR: "analytics_hour",
    Granularity.DAY: "analytics_day",
}
FIRSTS = "analytics_firsts"
# Guard tokens a bucket remembers (see the module's docstring).
GUARD_SIZE = 1000
# Parsed bucket parts kept by a reader (storage/bucket_cache.py): a 30-day
# dashboard holds 31 (DAY) to about 50 (48 h by HOUR) per content.
BUCKET_CACHE_ENTRIES = 20_000
VERSION = "v"
_META = frozenset({"_id", "scope", "start", "creator", "seen", VERSION})
_COUNTERS_ONLY = {name: 0 for name in _META if name != "_id"}
# The same, with the version: what a cached read fetches of a changed bucket.
_COUNTERS_AND_VERSION = {name: 0 for name in _META if name not in ("_id", VERSION)}


def bucket_id(scope: str, start_ms: int) -> str:
    return f"{scope}|{start_ms}"


def analytics_indexes(*, ttl: bool) -> dict[str, list[IndexModel]]:
    """The creator top lists' (creator, start) index on every granularity; with
    ``ttl`` (a real server only, as for storage/mongo.py's TTL indexes) the
    minute and hour buckets expire with their retention counted from ``start``."""
    out: dict[str, list[IndexModel]] = {}
    for g, name in COLLECTIONS.items():
        indexes = [IndexModel([("creator", ASCENDING), ("start", ASCENDING)], name="creator_start")]
        retention = RETENTION_MS[g]
        if ttl and retention is not None:
            indexes.append(
                IndexModel(
                    [("start", ASCENDING)], name="start_ttl", expireAfterSeconds=retention // 1000
                )
            )
        out[name] = indexes
    return out


async def ensure_analytics_indexes(db: Any, ttl: bool) -> None:
    for name, indexes in analytics_indexes(ttl=ttl).items():
        await db[name].create_indexes(indexes)


def flatten(doc: Mapping[str, Any]) -> dict[str, int]:
    """A bucket document's counters as flat dotted paths (the guard and the
    identifying fields left out)."""
    return flat({name: value for name, value in doc.items() if name not in _META})


def _summed(parts: Sequence[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        add_counters(total, part)
    return total


def _with_entry_tokens(tokens: list[str]) -> list[str]:
    """The tokens a write checks: its own, and for an entry-and-content token
    ("log:<partition>:<message id>:<content>") the entry's token alone too, which
    is what a worker before the split by content pushed for the same events. A
    redelivery of a half-applied group across that upgrade then still finds them."""
    out = list(tokens)
    for token in tokens:
        if token.startswith("log:"):
            parts = token.split(":", 3)
            if len(parts) == 4:
                out.append(":".join(parts[:3]))
    return list(dict.fromkeys(out)) if len(out) > len(tokens) else out


class MongoAnalytics:
    def __init__(
        self, db: Any, guard_size: int = GUARD_SIZE, cache_entries: int = BUCKET_CACHE_ENTRIES
    ) -> None:
        self._db = db
        self._cols = {g: db[name] for g, name in COLLECTIONS.items()}
        self._firsts = db[FIRSTS]
        self._guard = guard_size
        self._cache = BucketCache(cache_entries)

    # --- writes ---------------------------------------------------------------

    def _upsert(
        self, key: BucketKey, delta: BucketDelta, counters: Mapping[str, int], tokens: list[str]
    ) -> UpdateOne:
        on_insert: dict[str, Any] = {"scope": key.scope, "start": at_ms(key.start_ms)}
        if delta.creator is not None:
            on_insert["creator"] = delta.creator
        checked = _with_entry_tokens(tokens)
        guard: Any = {"$nin": checked} if len(checked) > 1 else {"$ne": checked[0]}
        update: dict[str, Any] = {
            "$setOnInsert": on_insert,
            "$push": {"seen": {"$each": tokens, "$slice": -self._guard}},
            # Unique per write, across processes and rebuilds: what a reader's
            # cached copy of the bucket is checked against.
            "$set": {VERSION: ObjectId()},
        }
        inc = {name: n for name, n in counters.items() if n}
        if inc:
            update["$inc"] = inc
        return UpdateOne(
            {"_id": bucket_id(key.scope, key.start_ms), "seen": guard}, update, upsert=True
        )

    async def apply(self, fold: Fold) -> int:
        """Write a fold's counters and first likes; returns how many buckets had
        to be redone token by token (they had seen some of the tokens)."""
        first: dict[Granularity, list[tuple[BucketKey, BucketDelta]]] = {g: [] for g in self._cols}
        for key, delta in fold.buckets.items():
            if delta.parts:
                first[key.granularity].append((key, delta))
        redone = 0

        async def write(g: Granularity) -> None:
            nonlocal redone
            items = first[g]
            if not items:
                return
            ops = [self._upsert(k, d, d.counters, list(d.parts)) for k, d in items]
            redo: list[UpdateOne] = []
            try:
                await self._cols[g].bulk_write(ops, ordered=False)
            except BulkWriteError as exc:
                for err in duplicate_key_errors(exc):
                    # Seen some tokens, or another writer created the bucket at the
                    # same moment: either way it exists now, and each token's own
                    # write tells which is which.
                    k, d = items[err["index"]]
                    redone += 1
                    redo += [
                        self._upsert(k, d, _summed(parts), [token])
                        for token, parts in d.parts.items()
                    ]
            if redo:
                try:
                    await self._cols[g].bulk_write(redo, ordered=False)
                except BulkWriteError as exc:
                    duplicate_key_errors(exc)  # each one: that token was applied already

        await asyncio.gather(*(write(g) for g in self._cols), self._apply_firsts(fold))
        return redone

    async def _apply_firsts(self, fold: Fold) -> None:
        if not fold.first_likes:
            return
        ops = [
            UpdateOne({"_id": cid}, {"$min": {"first_like_ms": ms}}, upsert=True)
            for cid, ms in fold.first_likes.items()
        ]
        try:
            await self._firsts.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            # Two first writes raced; the document exists now, so $min applies.
            again = [ops[e["index"]] for e in duplicate_key_errors(exc)]
            await self._firsts.bulk_write(again, ordered=False)

    async def delete(
        self,
        scopes: Sequence[str] | None,
        since_ms: int | None,
        *,
        first_likes_of: Sequence[str] | None = None,
        all_first_likes: bool = False,
    ) -> int:
        """Remove buckets of some scopes (None: all) starting at ``since_ms`` or
        later (None: all), and first likes of some contents; a rebuild's."""
        removed = 0
        for col in self._cols.values():
            filters: list[dict[str, Any]] = []
            since: dict[str, Any] = {} if since_ms is None else {"start": {"$gte": at_ms(since_ms)}}
            if scopes is None:
                filters.append(since)
            else:
                for scope in scopes:
                    # An _id range (indexed), then the scope itself: another scope's
                    # id may start with this one's.
                    ids = {"$gte": f"{scope}|", "$lt": f"{scope}|~"}
                    filters.append({"_id": ids, "scope": scope, **since})
            for f in filters:
                removed += (await col.delete_many(f)).deleted_count
        if all_first_likes:
            await self._firsts.delete_many({})
        elif first_likes_of:
            await self._firsts.delete_many({"_id": {"$in": list(first_likes_of)}})
        return removed

    # --- reads ----------------------------------------------------------------

    async def documents(
        self,
        scope: str,
        granularity: Granularity,
        starts: Sequence[int],
        fields: Sequence[str] | None = None,
    ) -> dict[int, dict[str, Any]]:
        if not starts:
            return {}
        by_id = {bucket_id(scope, s): s for s in starts}
        if self._cache.enabled:
            return await self._cached(granularity, by_id, fields)
        # Only counters cross the wire: an inclusion projection when the caller
        # names its fields, else everything but the guard and what identifies
        # the bucket (the caller knows that already).
        projection = dict.fromkeys(fields, 1) if fields else dict(_COUNTERS_ONLY)
        cursor = self._cols[granularity].find({"_id": {"$in": list(by_id)}}, projection)
        out: dict[int, dict[str, Any]] = {}
        async for doc in cursor:
            out[by_id[doc.pop("_id")]] = doc
        return out

    async def _cached(
        self, granularity: Granularity, by_id: Mapping[str, int], fields: Sequence[str] | None
    ) -> dict[int, dict[str, Any]]:
        """``documents`` through the cache: the versions of the buckets first, then
        in full only those not cached at that version. A bucket absent now (never
        written, or expired) is left out; one without a version (written before
        versions existed) is always read."""
        col = self._cols[granularity]
        name = COLLECTIONS[granularity]
        part = tuple(sorted(fields)) if fields else None
        out: dict[int, dict[str, Any]] = {}
        stale: list[str] = []
        if any((name, bid, part) in self._cache for bid in by_id):
            async for doc in col.find({"_id": {"$in": list(by_id)}}, {VERSION: 1}):
                bid = doc["_id"]
                hit = self._cache.get((name, bid, part), doc.get(VERSION))
                if hit is None:
                    stale.append(bid)
                else:
                    out[by_id[bid]] = hit
            if not stale:
                return out
        else:
            # Nothing of these cached (a first read): one round trip, as without
            # the cache.
            stale = list(by_id)
        projection = dict.fromkeys((*fields, VERSION), 1) if fields else dict(_COUNTERS_AND_VERSION)
        async for doc in col.find({"_id": {"$in": stale}}, projection):
            bid = doc.pop("_id")
            self._cache.put((name, bid, part), doc.pop(VERSION, None), doc)
            out[by_id[bid]] = doc
        return out

    async def first_like_ms(self, content_id: str) -> int | None:
        doc = await self._firsts.find_one({"_id": content_id})
        return None if doc is None else int(doc["first_like_ms"])
