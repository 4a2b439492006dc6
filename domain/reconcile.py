"""Reconciliation: recount from MongoDB, repair Redis where it drifted, say what changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.clock import to_ms
from domain.counters import drift
from domain.deps import Deps
from domain.reads import recount


@dataclass(frozen=True, slots=True)
class Repair:
    content_id: str
    # field -> (value Redis had, value recounted from MongoDB)
    fields: dict[str, tuple[int, int]]
    missing: bool = False


def unique_drift(stored: int, exact: int) -> bool:
    """HyperLogLog is an estimate (0.81% standard error); only a clear miss is drift."""
    return abs(stored - exact) > max(1, round(exact * 0.02))


async def reconcile(
    deps: Deps, content_ids: Sequence[str], *, settle_ms: int = 2000
) -> tuple[list[Repair], list[str]]:
    """Returns (repairs made, contents skipped because events were still landing).

    A content that the aggregator touched within ``settle_ms`` may be mid-flight:
    recount and counters can't be compared safely, so it is left for the next run.
    """
    if not content_ids:
        return [], []
    start = to_ms(deps.clock.now())
    truths = await recount(deps, content_ids)
    ids = list(truths)
    stored = await deps.counters.read(ids)
    repairs: list[Repair] = []
    busy: list[str] = []
    for cid in ids:
        truth = truths[cid]
        reading = stored.get(cid)
        if reading is None:
            fields = drift({}, truth.counters)
            await deps.counters.install(
                cid, truth.counters, truth.unique_members, start, replace=True
            )
            repairs.append(Repair(cid, fields, missing=True))
            continue
        fields = drift(reading.counters, truth.counters)
        exact = len(truth.unique_members)
        if unique_drift(reading.unique_viewers, exact):
            fields["uniqueViewers"] = (reading.unique_viewers, exact)
        if not fields:
            continue
        if reading.last_ms > start - settle_ms:
            busy.append(cid)
            continue
        await deps.counters.install(cid, truth.counters, truth.unique_members, start, replace=True)
        repairs.append(Repair(cid, fields))
    return repairs, busy
