"""The ingest gate (domain/admission.py): when it closes, opens, and what a write
waiting at it sees."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from domain.admission import IngestGate, gate_open
from storage.redis_stream import GroupLag
from workers.ingest_gate import largest_lag_ms


@pytest.mark.parametrize(
    ("was_open", "lag_ms", "expected"),
    [
        (True, 0, True),
        (True, 1_999, True),
        (True, 2_000, False),  # closes at the limit
        (True, 60_000, False),
        (False, 60_000, False),
        (False, 1_999, False),  # stays closed between half and the limit
        (False, 1_001, False),
        (False, 1_000, True),  # reopens at half of it
        (False, 0, True),
    ],
)
def test_gate_open(was_open: bool, lag_ms: int, expected: bool) -> None:
    assert gate_open(was_open, lag_ms, 2_000) is expected


@pytest.mark.parametrize(
    ("ages", "expected"),
    [
        ([], 0),
        ([(0, 0)], 0),
        ([(300, 0), (0, 1_200)], 1_200),  # undelivered counts as much as pending
        ([(4_000, 100), (0, 0), (10, 3_999)], 4_000),
    ],
)
def test_the_largest_lag_of_any_group(ages: list[tuple[int, int]], expected: int) -> None:
    lags = [
        GroupLag(f"g{i}", 0, 1, 1, undelivered, pending)
        for i, (pending, undelivered) in enumerate(ages)
    ]
    assert largest_lag_ms(lags) == expected


def waits() -> float:
    return REGISTRY.get_sample_value("likeview_ingest_gate_waits_total") or 0.0


@pytest.mark.parametrize(("max_lag_ms", "max_wait_s"), [(0, 1.0), (-1, 1.0), (1_000, 0)])
def test_settings_that_make_no_gate_are_refused(max_lag_ms: float, max_wait_s: float) -> None:
    with pytest.raises(ValueError):
        IngestGate(max_lag_ms, max_wait_s)


async def test_an_open_gate_admits_at_once() -> None:
    gate = IngestGate(2_000, 60)
    before = waits()
    gate.observe(1_500)
    await gate.admit()
    assert gate.is_open and waits() == before


async def test_a_write_waits_for_the_gate_to_open() -> None:
    gate = IngestGate(2_000, 60)
    gate.observe(2_500)
    assert not gate.is_open
    before = waits()
    task = asyncio.create_task(gate.admit(100))
    done, _ = await asyncio.wait({task}, timeout=0.1)
    assert not done
    gate.observe(1_500)  # caught up some, not enough: still closed
    done, _ = await asyncio.wait({task}, timeout=0.1)
    assert not done
    gate.observe(900)
    await task
    assert waits() == before + 1


async def test_a_write_goes_ahead_after_the_longest_wait() -> None:
    gate = IngestGate(2_000, 0.05)
    gate.observe(10_000)
    await gate.admit(100)  # returns, although the gate stays closed
    assert not gate.is_open


@pytest.mark.parametrize(
    ("events", "longest_s"),
    [
        (0, 0.02),  # an empty write counts as one event
        (1, 0.02),  # a like, one player's view event
        (10, 0.2),
        (50, 1.0),
        (100, 2.0),  # a full batch waits the whole INGEST_MAX_WAIT_MS
        (500, 2.0),
    ],
)
def test_a_write_waits_its_share_of_a_full_batch(events: int, longest_s: float) -> None:
    assert IngestGate(2_000, 2.0).longest_wait_s(events) == pytest.approx(longest_s)


async def test_a_small_write_is_held_briefly_and_a_batch_longer() -> None:
    gate = IngestGate(2_000, 60)  # a like may wait 0.6 s, a batch of 100 a minute
    gate.observe(10_000)
    like = asyncio.create_task(gate.admit(1))
    batch = asyncio.create_task(gate.admit(100))
    done, _ = await asyncio.wait({like, batch}, timeout=5)
    assert done == {like}
    gate.observe(0)
    await batch


async def test_release_opens_it_for_the_waiting() -> None:
    gate = IngestGate(2_000, 60)
    gate.observe(10_000)
    task = asyncio.create_task(gate.admit(100))
    await asyncio.sleep(0)
    gate.release()
    await task
    assert gate.is_open
