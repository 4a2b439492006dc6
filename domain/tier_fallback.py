"""The actors' integrity tiers for the write paths, with Redis down.

The mirror in Redis is a copy of the actor store in MongoDB (domain/enforcement.py
restores it after a Redis loss). Taking every actor as trusted during an outage
would count engagement the integrity worker excluded, so the truth is read
instead: one indexed MongoDB query per request, for the outage only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.deps import Deps
from domain.integrity import Tier
from domain.outages import is_outage


async def tiers_of(deps: Deps, actors: Sequence[str]) -> Mapping[str, Tier]:
    """Each actor's tier (absent: trusted)."""
    if deps.tiers is None or not actors:
        return {}
    try:
        return await deps.tiers.get_many(actors)
    except Exception as exc:
        if not is_outage(exc) or deps.integrity is None:
            raise
    records = await deps.integrity.actors.get_many(actors)
    return {actor: record.tier for actor, record in records.items()}
