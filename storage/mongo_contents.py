from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from domain.contents import Content, ContentKind
from storage.mongo import duplicate_key_errors


def _from_doc(doc: dict[str, Any]) -> Content:
    return Content(
        content_id=doc["_id"],
        creator_id=doc["creator_id"],
        kind=ContentKind(doc["kind"]),
        created_at=doc["created_at"],
        duration_ms=doc.get("duration_ms"),
    )


def _to_doc(content: Content) -> dict[str, Any]:
    return {
        "_id": content.content_id,
        "creator_id": content.creator_id,
        "kind": content.kind.value,
        "created_at": content.created_at,
        "duration_ms": content.duration_ms,
    }


class MongoContents:
    """Contents never change once registered, so a positive lookup is cached."""

    def __init__(self, db: Any, cache_size: int = 100_000) -> None:
        self._col = db["contents"]
        self._cache: dict[str, Content] = {}
        self._cache_size = cache_size

    def _remember(self, content: Content) -> None:
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[content.content_id] = content

    async def get_many(self, content_ids: Sequence[str]) -> dict[str, Content]:
        found = {cid: self._cache[cid] for cid in content_ids if cid in self._cache}
        wanted = [cid for cid in dict.fromkeys(content_ids) if cid not in found]
        if wanted:
            async for doc in self._col.find({"_id": {"$in": wanted}}):
                content = _from_doc(doc)
                self._remember(content)
                found[content.content_id] = content
        return found

    async def insert_many(self, contents: Sequence[Content]) -> dict[str, Content]:
        if not contents:
            return {}
        taken: set[str] = set()
        try:
            await self._col.insert_many([_to_doc(c) for c in contents], ordered=False)
        except BulkWriteError as exc:
            taken = {contents[e["index"]].content_id for e in duplicate_key_errors(exc)}
        existing: dict[str, Content] = {}
        if taken:
            async for doc in self._col.find({"_id": {"$in": list(taken)}}):
                existing[doc["_id"]] = _from_doc(doc)
        for content in contents:
            if content.content_id not in taken:
                self._remember(content)
        return existing

    async def insert(self, content: Content) -> Content | None:
        doc = _to_doc(content)
        try:
            await self._col.insert_one(doc)
        except DuplicateKeyError:
            stored = await self._col.find_one({"_id": content.content_id})
            if stored is None:  # deleted in between; treat as fresh
                return None
            return _from_doc(stored)
        self._remember(content)
        return None

    async def ids_after(self, after: str | None, limit: int) -> list[str]:
        query = {"_id": {"$gt": after}} if after is not None else {}
        cursor = self._col.find(query, {"_id": 1}).sort("_id", 1).limit(limit)
        return [doc["_id"] async for doc in cursor]
