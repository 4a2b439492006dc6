"""workers/supervise.py: a failing worker is started again until stop; its task is named."""

from __future__ import annotations

import asyncio

from workers.supervise import supervised


async def test_a_failing_worker_is_started_again_with_growing_pauses() -> None:
    stop = asyncio.Event()
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def run(_: asyncio.Event) -> None:
        starts.append(loop.time())
        if len(starts) < 3:
            raise RuntimeError("store down")

    await asyncio.wait_for(
        supervised("w", run, stop, first_pause_s=0.01, max_pause_s=0.02), timeout=5
    )
    assert len(starts) == 3  # failed twice, then returned normally
    assert starts[1] - starts[0] >= 0.01 and starts[2] - starts[1] >= 0.02


async def test_stop_ends_the_pause_and_no_restart_follows() -> None:
    stop = asyncio.Event()
    runs = 0

    async def run(_: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        stop.set()
        raise RuntimeError("fails as the service stops")

    await asyncio.wait_for(supervised("w", run, stop, first_pause_s=60), timeout=5)
    assert runs == 1


async def test_the_workers_task_carries_its_name() -> None:
    stop = asyncio.Event()
    seen: list[str] = []

    async def run(_: asyncio.Event) -> None:
        task = asyncio.current_task()
        assert task is not None
        seen.append(task.get_name())

    await asyncio.create_task(supervised("analytics", run, stop))
    assert seen == ["worker:analytics"]
