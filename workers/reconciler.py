"""The reconciler: recounts contents from MongoDB, repairs counter drift, reports it.

With the in-process MongoDB each recount is synchronous work on the event loop,
so a pass over all stored data would hold the loop for as long as the data is
large. A pass is therefore incremental and bounded: first the contents the
aggregator touched since they were last checked (a Redis set it fills as it
applies events, taken once they have settled), then the next stretch of a sweep
over all contents, which resumes where the previous pass stopped (its position
is kept in Redis, so every reconciling process shares one sweep). Both go in
small pages, and between pages the reconciler rests for a multiple of the time
the page took, so it never holds more than ``share`` of the loop; a page is one
recount query per source for the whole page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from domain.clock import to_ms
from domain.deps import Deps
from domain.ports import ReconcileQueue
from domain.reconcile import Repair, reconcile
from workers.metrics import (
    RECONCILER_DRIFT_COUNTERS,
    RECONCILER_DRIFT_UNIQUES,
    RECONCILER_LAST_DRIFT,
    RECONCILER_MISSING,
    RECONCILER_REPAIRS,
)
from workers.periodic import periodic

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReconcileReport:
    checked: int = 0
    repairs: list[Repair] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    # Of ``checked``: how many came from the touched set, and how many pages it took.
    touched: int = 0
    pages: int = 0
    # The sweep reached the last content; the next pass starts it over.
    swept_all: bool = False


def drift_size(repairs: list[Repair]) -> tuple[int, int, int]:
    """(absolute counter drift, absolute unique-viewer drift, contents missing) of
    a pass's repairs. A content missing from Redis is not drift: its "stored"
    values are zeros, and it is counted apart."""
    counters = uniques = missing = 0
    for repair in repairs:
        if repair.missing:
            missing += 1
            continue
        for name, (stored, exact) in repair.fields.items():
            if name == "uniqueViewers":
                uniques += abs(stored - exact)
            else:
                counters += abs(stored - exact)
    return counters, uniques, missing


class Reconciler:
    def __init__(
        self,
        deps: Deps,
        queue: ReconcileQueue,
        *,
        batch: int = 50,
        interval_s: float = 300.0,
        settle_ms: int = 2000,
        touched_per_pass: int = 5_000,
        sweep_per_pass: int = 10_000,
        share: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self._deps = deps
        self._queue = queue
        self._batch = batch
        self._interval = interval_s
        self._settle_ms = settle_ms
        self._touched_per_pass = touched_per_pass
        self._sweep_per_pass = sweep_per_pass
        self._rest = (1 - share) / share
        self._sleep = sleep

    async def run_once(self, stop: asyncio.Event | None = None) -> ReconcileReport:
        report = ReconcileReport()
        done: set[str] = set()
        settled_before = to_ms(self._deps.clock.now()) - self._settle_ms
        budget = self._touched_per_pass
        while budget > 0 and not (stop and stop.is_set()):
            ids = await self._queue.take_touched(settled_before, min(self._batch, budget))
            if not ids:
                break
            budget -= len(ids)
            fresh = [cid for cid in dict.fromkeys(ids) if cid not in done]
            await self._page(fresh, report)
            report.touched += len(fresh)
            done.update(fresh)
        after = await self._queue.sweep_position()
        budget = self._sweep_per_pass
        while budget > 0 and not (stop and stop.is_set()):
            ids = await self._deps.contents.ids_after(after, min(self._batch, budget))
            if not ids:
                report.swept_all = True
                after = None
                break
            budget -= len(ids)
            after = ids[-1]
            await self._page([cid for cid in ids if cid not in done], report)
            await self._queue.save_sweep_position(after)
        if report.swept_all:
            await self._queue.save_sweep_position(None)
        self._report(report)
        return report

    async def _page(self, ids: list[str], report: ReconcileReport) -> None:
        started = time.monotonic()
        if ids:
            repairs, busy = await reconcile(self._deps, ids, settle_ms=self._settle_ms)
            report.checked += len(ids)
            report.repairs.extend(repairs)
            report.busy.extend(busy)
        report.pages += 1
        # Always a real yield, even after an empty or instant page.
        await self._sleep((time.monotonic() - started) * self._rest)

    @staticmethod
    def _report(report: ReconcileReport) -> None:
        RECONCILER_REPAIRS.inc(len(report.repairs))
        counters, uniques, missing = drift_size(report.repairs)
        RECONCILER_DRIFT_COUNTERS.inc(counters)
        RECONCILER_DRIFT_UNIQUES.inc(uniques)
        RECONCILER_MISSING.inc(missing)
        RECONCILER_LAST_DRIFT.set(counters + uniques)
        for repair in report.repairs:
            log.warning(
                "reconciler repaired counters",
                extra={
                    "content_id": repair.content_id,
                    "drift": repair.fields,
                    "missing": repair.missing,
                },
            )

    async def run(self, stop: asyncio.Event) -> None:
        # Not at start: a fresh process has nothing to repair that reads don't.
        await periodic(
            lambda: self.run_once(stop), stop, self._interval, "reconciler", first_at_once=False
        )
