"""The loop of a periodic worker: run a pass, survive its failure, stop promptly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def periodic(
    job: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    interval_s: float,
    name: str,
    *,
    first_at_once: bool,
) -> None:
    """Run ``job`` every ``interval_s`` until ``stop`` is set; a failed pass is
    logged and the next one runs on schedule (a worker must not die of one)."""
    wait_first = not first_at_once
    while not stop.is_set():
        if wait_first:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
            if stop.is_set():
                return
        wait_first = True
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s pass failed", name)
