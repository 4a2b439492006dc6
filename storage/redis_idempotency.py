"""Idempotency records in Redis: claimed with SET NX, kept for a day or more."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis

from domain.idempotency import DONE, PENDING, IdempotencyRecord
from storage.keys import Keys


class RedisIdempotency:
    def __init__(
        self, client: aioredis.Redis, keys: Keys, ttl_s: int, pending_ttl_s: int = 60
    ) -> None:
        self._r = client
        self._keys = keys
        self._ttl = ttl_s
        # A crashed first attempt must not block its key for a whole day.
        self._pending_ttl = pending_ttl_s

    async def begin(self, user_id: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        name = self._keys.idempotency(user_id, key)
        claim = orjson.dumps({"state": PENDING, "fp": fingerprint})
        if await self._r.set(name, claim, nx=True, ex=self._pending_ttl):
            return None
        return await self.get(user_id, key) or IdempotencyRecord(PENDING, fingerprint)

    async def get(self, user_id: str, key: str) -> IdempotencyRecord | None:
        raw = await self._r.get(self._keys.idempotency(user_id, key))
        if raw is None:
            return None
        data = orjson.loads(raw)
        return IdempotencyRecord(data["state"], data["fp"], data.get("result"))

    async def complete(
        self, user_id: str, key: str, fingerprint: str, result: Mapping[str, Any]
    ) -> None:
        record = orjson.dumps({"state": DONE, "fp": fingerprint, "result": dict(result)})
        await self._r.set(self._keys.idempotency(user_id, key), record, ex=self._ttl)

    async def release(self, user_id: str, key: str) -> None:
        await self._r.delete(self._keys.idempotency(user_id, key))
