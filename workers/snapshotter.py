"""The snapshotter: keeps a counter snapshot in MongoDB for every content whose
counters changed since its last one (domain/counter_snapshots.py).

The aggregator notes each content it changes in a per-partition set of its own
(as it does for the reconciler); a pass takes them in small pages and, between
pages, rests for a multiple of the time the page took, so it never holds more
than ``share`` of the event loop. A content whose snapshot could not be cut (its
capture was overtaken: counters replaced, another capture, its window closed)
goes back in the set for the next pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from domain.counter_snapshots import DEFAULT_MARGIN_MS, Outcome, take_snapshot
from domain.ports import Clock, SnapshotPorts
from workers.periodic import periodic

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SnapshotReport:
    outcomes: dict[Outcome, int] = field(default_factory=dict)
    pages: int = 0
    retried: list[str] = field(default_factory=list)

    @property
    def taken(self) -> int:
        return self.outcomes.get(Outcome.TAKEN, 0)


class Snapshotter:
    def __init__(
        self,
        ports: SnapshotPorts,
        clock: Clock,
        *,
        interval_s: float = 60.0,
        batch: int = 50,
        per_pass: int = 5_000,
        margin_ms: int = DEFAULT_MARGIN_MS,
        share: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self._ports = ports
        self._clock = clock
        self._interval = interval_s
        self._batch = batch
        self._per_pass = per_pass
        self._margin_ms = margin_ms
        self._rest = (1 - share) / share
        self._sleep = sleep
        self._wall = wall_clock

    async def run_once(self, stop: asyncio.Event | None = None) -> SnapshotReport:
        report = SnapshotReport()
        # The set's scores are the aggregator's wall clock.
        before = int(self._wall() * 1000)
        budget = self._per_pass
        while budget > 0 and not (stop and stop.is_set()):
            ids = await self._ports.capture.take_changed(before, min(self._batch, budget))
            if not ids:
                break
            budget -= len(ids)
            await self._page(list(dict.fromkeys(ids)), report)
        # Back in the set after the pass, or this pass would take them again.
        await self._ports.capture.requeue(report.retried, before)
        if report.outcomes:
            log.info(
                "counter snapshots",
                extra={"outcomes": {o.value: n for o, n in report.outcomes.items()}},
            )
        return report

    async def _page(self, ids: list[str], report: SnapshotReport) -> None:
        started = time.monotonic()
        for cid in ids:
            try:
                outcome = await take_snapshot(
                    self._ports, self._clock, cid, margin_ms=self._margin_ms
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("counter snapshot failed", extra={"content_id": cid})
                outcome = Outcome.LAPSED
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            if outcome is Outcome.LAPSED:
                report.retried.append(cid)
        report.pages += 1
        # Always a real yield, even after an instant page.
        await self._sleep((time.monotonic() - started) * self._rest)

    async def run(self, stop: asyncio.Event) -> None:
        await periodic(
            lambda: self.run_once(stop), stop, self._interval, "snapshotter", first_at_once=False
        )
