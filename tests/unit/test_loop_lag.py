"""The event-loop lag probe: a late timer is a stall, reported as metrics."""

from __future__ import annotations

import asyncio

import pytest

from workers.loop_lag import LOOP_LAG_MAX, LoopLagProbe, probing


@pytest.mark.parametrize(
    ("lags", "observed", "longest"),
    [
        ([0.0], [0.0], 0.0),
        ([-0.001], [0.0], 0.0),  # a timer never runs early: clock noise is no lag
        ([0.002, 0.3, 0.01], [0.002, 0.3, 0.01], 0.3),
    ],
)
def test_each_lag_is_observed_and_the_longest_kept(lags, observed, longest):
    seen: list[float] = []
    probe = LoopLagProbe(observe=seen.append)
    for lag in lags:
        probe.record(lag)
    assert seen == observed
    assert probe.max_s == longest
    assert LOOP_LAG_MAX._value.get() >= longest


async def test_a_stall_between_ticks_is_recorded_as_lag():
    now = [0.0]
    seen: list[float] = []
    probe = LoopLagProbe(interval_s=0, clock=lambda: now[0], observe=seen.append)
    stop = asyncio.Event()

    async def stall_then_stop():
        await asyncio.sleep(0)
        now[0] += 2.5  # as if something held the loop for 2.5 s
        await asyncio.sleep(0)
        stop.set()

    await asyncio.gather(probe.run(stop), stall_then_stop())
    assert max(seen) == 2.5 and probe.max_s == 2.5


async def test_probing_runs_until_the_block_ends():
    async with probing(LoopLagProbe(interval_s=0)) as probe:
        for _ in range(5):
            await asyncio.sleep(0)
    ticks = probe.max_s  # no assertion on its value: only that it stopped cleanly
    assert ticks >= 0
