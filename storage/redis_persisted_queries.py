"""Automatic persisted queries in Redis: every API process knows every hash."""

from __future__ import annotations

from typing import Any

from storage.keys import Keys


class RedisPersistedQueries:
    """Query texts by SHA-256, each kept ``ttl_s`` after its last registration."""

    def __init__(self, redis: Any, keys: Keys, ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = ttl_s

    async def get(self, sha256_hex: str) -> str | None:
        found = await self._redis.get(self._keys.persisted_query(sha256_hex))
        if found is None:
            return None
        return found if isinstance(found, str) else found.decode()

    async def put(self, sha256_hex: str, query: str) -> None:
        await self._redis.set(self._keys.persisted_query(sha256_hex), query, ex=self._ttl)
