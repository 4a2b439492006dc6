"""Counter snapshots: a content's counters and HyperLogLog kept in MongoDB, so a
Redis miss restores them from the snapshot plus the events after it instead of
recounting every reaction and loading every counted viewer.

A snapshot holds the effect of exactly the events that occurred at or before its
watermark W. Redis counters are not such a prefix (events are applied in log
order, late ones after newer ones), so a snapshot is cut out of a capture:

1. capture the counters and the HyperLogLog's registers (one script); the capture
   stays open, and the apply script notes each event applied to the content after
   it;
2. then read from MongoDB every counted event of the content that occurred in the
   last ``2 * margin``: any event applied before the capture was written to
   MongoDB before it, so it is among them (durable_events.py says why none slips
   between the outbox and the archive);
3. ask Redis which of them were applied before the capture (closing it). Included
   in the capture: those, and every event no later than the counters' recount
   (``asof``), as the apply script treats them;
4. W starts at ``now - margin`` (or ``asof``, when later); an event at or before W
   that the capture did not include (the pipeline is behind) pulls W below it
   (never below the events read: they all occurred after ``now - 2 * margin``);
5. the included events after W are taken back out of the counters. The registers
   stay as captured: a HyperLogLog only gains members, and adding one twice
   changes nothing, so the members of events after W are simply added again on
   restore.

Restore: the snapshot's counters plus the deltas of every durable event after W,
its registers plus those events' members, installed as of a time taken before the
events are read: the same guarantees as the recount it replaces (events after
that time apply on top, the applied set dedupes them). The reconciler still
recounts: it is the cross-check of both paths.

Assumed, as the reconciler's settle time is: an event is in MongoDB within
``margin`` of its time, and applied within ``2 * margin`` (else it counts as
included and is lost from the snapshot until the reconciler repairs the content).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence

from domain.clock import to_ms
from domain.deps import Deps
from domain.events import EngagementEvent
from domain.ports import Clock, CounterReading, CounterSnapshot, SnapshotPorts

DEFAULT_MARGIN_MS = 30_000


class Outcome(enum.Enum):
    TAKEN = "taken"
    ABSENT = "absent"  # no counters in Redis: nothing to snapshot
    LAPSED = "lapsed"  # the capture was overtaken (counters replaced, window closed)
    STALE = "stale"  # a snapshot with a later watermark is stored already


def unique_events(events: Iterable[EngagementEvent]) -> list[EngagementEvent]:
    """Each event once (the outbox and the archive may both hold one)."""
    seen: set[str] = set()
    out: list[EngagementEvent] = []
    for e in events:
        if e.event_id not in seen:
            seen.add(e.event_id)
            out.append(e)
    return out


def included_ids(
    events: Sequence[EngagementEvent], asof_ms: int, applied_before: frozenset[str]
) -> set[str]:
    """The events a capture holds: applied before it, or no later than its recount."""
    return {
        e.event_id for e in events if e.occurred_at_ms <= asof_ms or e.event_id in applied_before
    }


def watermark(
    candidate_ms: int,
    low_ms: int,
    asof_ms: int,
    events: Sequence[EngagementEvent],
    included: set[str],
) -> int:
    """The latest W <= max(candidate, asof) such that every event read (all those
    after ``low_ms``) at or before W is included: at least ``low_ms``."""
    w = max(candidate_ms, asof_ms)
    late = [
        e.occurred_at_ms for e in events if e.event_id not in included and e.occurred_at_ms <= w
    ]
    if late:
        w = min(late) - 1
    return max(w, low_ms)


def counters_at(
    counters: Mapping[str, int],
    events: Sequence[EngagementEvent],
    included: set[str],
    watermark_ms: int,
) -> dict[str, int]:
    """Captured counters without the included events after the watermark."""
    out = dict(counters)
    for e in unique_events(events):
        if e.event_id in included and e.occurred_at_ms > watermark_ms:
            for name, delta in e.deltas.items():
                out[name] = out.get(name, 0) - delta
    return out


def fold(
    snapshot: CounterSnapshot, events: Sequence[EngagementEvent]
) -> tuple[dict[str, int], list[str]]:
    """(counters, members to add to the registers): the snapshot plus every event
    after its watermark, each once, as the apply script would add them."""
    counters = dict(snapshot.counters)
    members: set[str] = set()
    for e in unique_events(events):
        if e.occurred_at_ms <= snapshot.watermark_ms:
            continue
        for name, delta in e.deltas.items():
            counters[name] = counters.get(name, 0) + delta
        if e.unique:
            members.add(e.unique)
    return counters, sorted(members)


def usable(snapshot: CounterSnapshot, now_ms: int, horizon_ms: int | None) -> bool:
    """Events after the watermark must all still be in MongoDB, and the registers
    must be a HyperLogLog (Redis refuses to add to anything else: the read would fail
    where a recount succeeds)."""
    if snapshot.registers and not snapshot.registers.startswith(b"HYLL"):
        return False
    return horizon_ms is None or snapshot.watermark_ms > now_ms - horizon_ms


async def take_snapshot(
    ports: SnapshotPorts, clock: Clock, content_id: str, *, margin_ms: int = DEFAULT_MARGIN_MS
) -> Outcome:
    now = to_ms(clock.now())
    captured = await ports.capture.capture(content_id)
    if captured is None:
        return Outcome.ABSENT
    low = now - 2 * margin_ms
    # Read after the capture: see the module's docstring, step 2.
    events = unique_events(await ports.events.after(content_id, low))
    applied = await ports.capture.finish(content_id, captured.token, [e.event_id for e in events])
    if applied is None:
        return Outcome.LAPSED
    included = included_ids(events, captured.asof_ms, applied)
    w = watermark(now - margin_ms, low, captured.asof_ms, events, included)
    snapshot = CounterSnapshot(
        content_id,
        counters_at(captured.counters, events, included, w),
        captured.registers,
        w,
        now,
    )
    return Outcome.TAKEN if await ports.store.save(snapshot) else Outcome.STALE


async def restore(deps: Deps, content_ids: Sequence[str]) -> dict[str, CounterReading]:
    """Install counters from snapshots where one is usable; the rest are left out
    (the caller recounts them)."""
    ports = deps.snapshots
    if ports is None or not content_ids:
        return {}
    snapshots = await ports.store.get_many(content_ids)
    # Taken before the events are read, as a recount's: later ones apply on top.
    asof = to_ms(deps.clock.now())
    out: dict[str, CounterReading] = {}
    for cid, snapshot in snapshots.items():
        if not usable(snapshot, asof, ports.horizon_ms):
            continue
        counters, members = fold(snapshot, await ports.events.after(cid, snapshot.watermark_ms))
        uniques = await ports.capture.install(
            cid, counters, snapshot.registers, members, asof, replace=False
        )
        if uniques is None:
            # Someone installed them meanwhile: theirs stand.
            reading = (await deps.counters.read([cid]))[cid]
            if reading is not None:
                out[cid] = reading
            continue
        out[cid] = CounterReading(counters, uniques)
    return out
