"""Names of the counter fields every content has, shared by writers and readers."""

from __future__ import annotations

LIKES = "likes"
VIEWS = "views"
REACTION_PREFIX = "r:"


def reaction_field(reaction: str) -> str:
    return f"{REACTION_PREFIX}{reaction}"


def add(counters: dict[str, int], deltas: dict[str, int]) -> dict[str, int]:
    """Counters with deltas folded in; never below zero (a counter of people can't be)."""
    out = dict(counters)
    for field, delta in deltas.items():
        out[field] = max(0, out.get(field, 0) + delta)
    return out


def drift(redis: dict[str, int], truth: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Fields whose stored value differs from the recount: field -> (stored, truth)."""
    fields = set(redis) | set(truth)
    return {
        f: (redis.get(f, 0), truth.get(f, 0))
        for f in sorted(fields)
        if redis.get(f, 0) != truth.get(f, 0)
    }
