"""The deltas a trusted actor's events carry, as the like and view paths write them:
what the trending and signals tests build their events with."""

from __future__ import annotations

from typing import Any

from domain.events import REACTION, VIEW


def deltas_of(kind: str, data: dict[str, Any]) -> dict[str, int]:
    if kind == VIEW:
        return {"views": 1}
    if kind != REACTION:
        return {}
    before, after = data.get("before"), data.get("after")
    out: dict[str, int] = {}
    if before:
        out[f"r:{before}"] = -1
    if after:
        out[f"r:{after}"] = 1
    if (after is None) != (before is None):
        out["likes"] = 1 if after else -1
    return out
