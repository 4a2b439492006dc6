"""The tier mirror in Redis: what the like and view paths read to write a new
reaction or counted view in its actor's tier (the truth is the actor store)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from domain.integrity import Tier, tier_from
from storage.keys import Keys


class RedisTierMirror:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r = client
        self._keys = keys

    async def get_many(self, actors: Sequence[str]) -> dict[str, Tier]:
        if not actors:
            return {}
        # GETs in one pipeline, not MGET: on a Cluster the keys are in many slots.
        async with self._r.pipeline(transaction=False) as pipe:
            for actor in actors:
                pipe.get(self._keys.actor_tier(actor))
            values = await pipe.execute()
        return {
            actor: tier_from(v.decode() if isinstance(v, bytes) else v)
            for actor, v in zip(actors, values, strict=True)
            if v is not None
        }

    async def set_many(self, tiers: Mapping[str, Tier]) -> None:
        if not tiers:
            return
        async with self._r.pipeline(transaction=False) as pipe:
            for actor, tier in tiers.items():
                key = self._keys.actor_tier(actor)
                # Trusted is the default: absent keeps the mirror as small as the
                # set of actors anything is held against.
                if tier is Tier.TRUSTED:
                    pipe.delete(key)
                else:
                    pipe.set(key, tier.value)
            await pipe.execute()
