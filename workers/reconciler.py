"""The reconciler: walks all contents, repairs counter drift, reports it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from domain.deps import Deps
from domain.reconcile import Repair, reconcile
from workers.metrics import RECONCILER_REPAIRS
from workers.periodic import periodic

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReconcileReport:
    checked: int = 0
    repairs: list[Repair] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(
        self, deps: Deps, *, batch: int = 200, interval_s: float = 300.0, settle_ms: int = 2000
    ) -> None:
        self._deps = deps
        self._batch = batch
        self._interval = interval_s
        self._settle_ms = settle_ms

    async def run_once(self) -> ReconcileReport:
        report = ReconcileReport()
        after: str | None = None
        while ids := await self._deps.contents.ids_after(after, self._batch):
            repairs, busy = await reconcile(self._deps, ids, settle_ms=self._settle_ms)
            report.checked += len(ids)
            report.repairs.extend(repairs)
            report.busy.extend(busy)
            after = ids[-1]
        RECONCILER_REPAIRS.inc(len(report.repairs))
        for repair in report.repairs:
            log.warning(
                "reconciler repaired counters",
                extra={
                    "content_id": repair.content_id,
                    "drift": repair.fields,
                    "missing": repair.missing,
                },
            )
        return report

    async def run(self, stop: asyncio.Event) -> None:
        # Not at start: a fresh process has nothing to repair that reads don't.
        await periodic(self.run_once, stop, self._interval, "reconciler", first_at_once=False)
