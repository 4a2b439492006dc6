"""registerContents: a catalog import of up to 500 contents, with the rules and
idempotency of one registerContent, in constant round trips."""

from __future__ import annotations

import pytest

from domain import reads
from domain.catalog import MAX_REGISTRATIONS, Registration, register_contents
from domain.contents import ContentKind
from domain.errors import BadUserInput, Conflict, Forbidden
from domain.identity import Actor
from tests.integration.conftest import SERVICE, RoundTrips

V = ContentKind.VIDEO


def regs(n: int, start: int = 0) -> list[Registration]:
    return [Registration(f"cat-{i}", "creator", V, 60_000) for i in range(start, start + n)]


async def test_a_batch_registers_all_with_zeroed_counters(deps):
    done = await register_contents(deps, SERVICE, regs(300))
    assert [c.content_id for c in done] == [f"cat-{i}" for i in range(300)]
    summaries = await reads.summaries(deps, None, [f"cat-{i}" for i in range(0, 300, 3)])
    assert all(s.likes == 0 for s in summaries)
    stored = await deps.counters.read(["cat-0", "cat-299"])
    assert all(reading is not None for reading in stored.values())  # no recount needed


async def test_repeating_a_batch_is_harmless_and_answers_the_same(deps):
    first = await register_contents(deps, SERVICE, regs(10))
    again = await register_contents(deps, SERVICE, regs(15))  # 10 repeats, 5 new
    assert [c.content_id for c in again] == [f"cat-{i}" for i in range(15)]
    assert again[:10] == first  # the stored registration, its created_at included


async def test_a_conflicting_repeat_is_a_conflict_after_the_others_are_written(deps):
    await register_contents(deps, SERVICE, regs(1))
    batch = [Registration("cat-0", "someone-else", V), *regs(2, start=1)]
    with pytest.raises(Conflict, match="cat-0"):
        await register_contents(deps, SERVICE, batch)
    assert set(await deps.contents.get_many(["cat-1", "cat-2"])) == {"cat-1", "cat-2"}


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([*regs(2), Registration("", "c", V)], "inputs[2]: contentId must be a non-empty string"),
        ([Registration("x", "c\x00", V)], "inputs[0]: creatorId must not contain control"),
        ([Registration("x", "c", V, 0)], "inputs[0]: durationMs must be positive"),
        (regs(MAX_REGISTRATIONS + 1), "at most 500"),
    ],
)
async def test_bad_input_writes_nothing(deps, batch, message):
    with pytest.raises(BadUserInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        await register_contents(deps, SERVICE, batch)
    assert await deps.contents.get_many([r.content_id for r in batch if r.content_id]) == {}


async def test_the_same_id_twice_must_agree(deps):
    same = [Registration("twice", "c", V), Registration("twice", "c", V)]
    assert [c.content_id for c in await register_contents(deps, SERVICE, same)] == ["twice"] * 2
    with pytest.raises(Conflict):
        await register_contents(
            deps, SERVICE, [Registration("t2", "c", V), Registration("t2", "d", V)]
        )


async def test_registrars_only(deps):
    with pytest.raises(Forbidden):
        await register_contents(deps, Actor("someone"), regs(1))


@pytest.mark.parametrize("n", [1, 50, 500])
async def test_a_batch_costs_constant_round_trips(runtime, mongo_db, monkeypatch, n):
    mongo_db.counts.clear()
    trips = RoundTrips(monkeypatch)
    await register_contents(runtime.deps, SERVICE, regs(n))
    assert dict(mongo_db.counts) == {"contents.insert_many": 1}
    assert trips.count == 1  # the zeroed counters: one pipeline
