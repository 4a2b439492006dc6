import asyncio

import pytest

from workers.periodic import periodic


@pytest.mark.parametrize("first_at_once", [True, False])
async def test_a_failed_pass_does_not_stop_the_worker(first_at_once):
    stop = asyncio.Event()
    calls = 0

    async def job():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("transient")
        if calls == 3:
            stop.set()

    await asyncio.wait_for(periodic(job, stop, 0, "test", first_at_once=first_at_once), 5)
    assert calls == 3


async def test_stop_before_the_first_wait_runs_nothing():
    stop = asyncio.Event()
    stop.set()
    ran: list[int] = []

    async def job():
        ran.append(1)

    await periodic(job, stop, 3600, "t", first_at_once=False)
    assert ran == []


async def test_stop_ends_a_long_wait_promptly():
    stop = asyncio.Event()
    task = asyncio.create_task(
        periodic(lambda: asyncio.sleep(0), stop, 3600, "t", first_at_once=False)
    )
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, 5)  # does not wait out the hour
