"""Reconciliation: recount from MongoDB, repair Redis where it drifted, say what changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.counters import add, drift
from domain.deps import Deps
from domain.reads import to_ms


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
    known = await deps.contents.get_many(content_ids)
    ids = [cid for cid in content_ids if cid in known]
    truth: dict[str, dict[str, int]] = {cid: {} for cid in ids}
    members: dict[str, set[str]] = {cid: set() for cid in ids}
    for source in deps.sources:
        for cid, counts in (await source.recount(ids)).items():
            truth[cid] = add(truth[cid], counts)
        for cid in ids:
            members[cid].update(await source.unique_members(cid))
    stored = await deps.counters.read(ids)
    last = await deps.counters.last_applied_ms(ids)
    repairs: list[Repair] = []
    busy: list[str] = []
    for cid in ids:
        reading = stored.get(cid)
        if reading is None:
            fields = drift({}, truth[cid])
            await deps.counters.install(cid, truth[cid], sorted(members[cid]), start, replace=True)
            repairs.append(Repair(cid, fields, missing=True))
            continue
        fields = drift(reading.counters, truth[cid])
        if unique_drift(reading.unique_viewers, len(members[cid])):
            fields["uniqueViewers"] = (reading.unique_viewers, len(members[cid]))
        if not fields:
            continue
        if last.get(cid, 0) > start - settle_ms:
            busy.append(cid)
            continue
        await deps.counters.install(cid, truth[cid], sorted(members[cid]), start, replace=True)
        repairs.append(Repair(cid, fields))
    return repairs, busy
