"""Keep a worker running through store outages.

A worker's loop survives a failed batch, but not every step before the loop does
(creating its consumer group, a first drain): with Redis or MongoDB down at that
moment the worker died, and in the embedded mode its failure ended every other
worker too (they run under one gather). Here a worker that raises is logged and
started again after a pause that doubles up to ``max_pause_s``, until ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def supervised(
    name: str,
    run: Callable[[asyncio.Event], Awaitable[None]],
    stop: asyncio.Event,
    *,
    first_pause_s: float = 0.5,
    max_pause_s: float = 10.0,
) -> None:
    task = asyncio.current_task()
    if task is not None:
        # Named for whoever reads tasks: asyncio's debug mode, py-spy, a stack dump.
        task.set_name(f"worker:{name}")
    pause = first_pause_s
    while not stop.is_set():
        try:
            await run(stop)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker %s failed; starting it again in %.1f s", name, pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(pause * 2, max_pause_s)
