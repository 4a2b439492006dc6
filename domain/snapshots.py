"""Snapshots for live pushes: counters with their version, and the viewer's
reaction as of those counters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from domain.counters import add
from domain.deps import Deps
from domain.events import EngagementEvent
from domain.identity import Actor
from domain.ports import CounterReading, ReactionRecord
from domain.reads import rebuild
from domain.summary import Summary, summarize


@dataclass(frozen=True, slots=True)
class Snapshot:
    summary: Summary
    version: int
    # The counts add the viewer's own events the aggregator has not applied yet.
    own_pending: bool = False


def with_own_events(
    reading: CounterReading, own: Sequence[EngagementEvent]
) -> tuple[dict[str, int], bool]:
    """Counters that include the viewer's own events, as the like response does
    (read-your-writes), and whether any had to be added."""
    counters = reading.counters
    added = False
    for event in own:
        # Applied ones are in the counters already, and so are those a recount
        # (``asof_ms``) saw.
        if event.event_id not in reading.applied and event.occurred_at_ms > reading.asof_ms:
            counters = add(counters, dict(event.deltas))
            added = True
    return counters, added


async def snapshots(deps: Deps, viewer: Actor | None, content_ids: Sequence[str]) -> list[Snapshot]:
    """One snapshot per content: the viewer's reaction comes with its events'
    effect on the counters, so the two always belong together.

    A signed-in viewer costs one reaction lookup per content (their outbox says
    which own events may not be applied yet), plus one counters round trip.
    """
    ids = list(dict.fromkeys(content_ids))
    records: dict[str, ReactionRecord] = {}
    if viewer is not None and ids:
        found = await asyncio.gather(*(deps.reactions.get(cid, viewer.user_id) for cid in ids))
        records = {cid: r for cid, r in zip(ids, found, strict=True) if r is not None}
    own = [e for r in records.values() for e in r.pending]
    readings = await deps.counters.read(ids, own)
    missing = [cid for cid in ids if readings.get(cid) is None]
    # Evicted or never built: recount from MongoDB, then read the installed
    # counters for their version (unknown contents get none).
    rebuilt = list(await rebuild(deps, missing, replace=False)) if missing else []
    if rebuilt:
        again = await deps.counters.read(rebuilt, [e for e in own if e.content_id in rebuilt])
        readings.update(again)
    out: list[Snapshot] = []
    for cid in ids:
        reading = readings.get(cid) or CounterReading({}, 0)
        record = records.get(cid)
        counters, pending = with_own_events(reading, record.pending if record else ())
        reaction = record.reaction if record else None
        summary = summarize(cid, counters, reading.unique_viewers, reaction)
        out.append(Snapshot(summary, reading.version, pending))
    return out
