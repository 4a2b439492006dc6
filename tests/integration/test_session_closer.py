"""Idle view sessions end: once, through their outbox, never over a concurrent event."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.events import view_end_event_id
from domain.identity import Actor
from domain.view_recording import record_views, view_session
from main import Settings, build_workers
from storage.mongo_view_sessions import MongoViewSessions
from workers.outbox_relay import OutboxRelay
from workers.session_closer import SessionCloser

ALICE = Actor("alice")
IDLE = timedelta(seconds=1800)


@pytest.fixture
def closer(workers):
    return workers["session_closer"]


def ev(session="s1", content="v1", **kw):
    return {"content_id": content, "session_id": session, **kw}


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def ends(runtime, workers):
    await workers["archiver"].run_once()
    found = [d async for d in runtime.db["events"].find({"kind": "view_end"})]
    return sorted(found, key=lambda d: d["data"]["session_id"])


class Hooked:
    """The real store, with something happening between the closer's read and its write."""

    def __init__(self, inner: MongoViewSessions, between) -> None:
        self._inner = inner
        self._between = between
        self.limits: list[int] = []
        self.found: list[int] = []

    async def ensure_idle_index(self) -> None:
        await self._inner.ensure_idle_index()

    async def idle(self, before, limit):
        found = await self._inner.idle(before, limit)
        self.limits.append(limit)
        self.found.append(len(found))
        if self._between is not None and found:
            between, self._between = self._between, None
            await between()
        return found

    async def save_many(self, writes):
        return await self._inner.save_many(writes)


def hooked_closer(runtime, deps, between=None, batch=200):
    store = Hooked(MongoViewSessions(runtime.db), between)
    return SessionCloser(deps, store, idle=IDLE, batch=batch), store


def test_the_worker_is_registered_with_the_idle_setting(runtime):
    settings = Settings(redis_url="redis://unused", session_idle_s=90)
    runtime.settings = settings
    closer = build_workers(runtime, "x")["session_closer"]
    assert isinstance(closer, SessionCloser) and closer._idle == timedelta(seconds=90)


# (time since the last event, whether a pass ends the session)
BOUNDARY = [
    (timedelta(minutes=1), False),
    (IDLE - timedelta(milliseconds=1), False),
    (IDLE, False),  # idle for exactly SESSION_IDLE_S: not yet
    (IDLE + timedelta(milliseconds=1), True),
    (timedelta(days=3), True),
]


@pytest.mark.parametrize(("quiet", "closed"), BOUNDARY)
async def test_a_session_ends_once_idle_longer_than_the_setting(
    deps, runtime, clock, workers, closer, video, quiet, closed
):
    await record_views(deps, ALICE, [ev(watched_ms=5_000)], "PT")
    clock.advance(seconds=quiet.total_seconds())
    assert await closer.run_once() == int(closed)
    assert (await view_session(deps, ALICE, "s1")).ended is closed
    assert len(await ends(runtime, workers)) == int(closed)


# (the session's requests as (seconds after the previous one, fields), the end's data)
IDLE_ENDS = [
    (
        [
            (0, {"watched_ms": 20_000, "position_ms": 20_000, "platform": "IOS"}),
            (20, {"watched_ms": 15_000, "position_ms": 35_000, "source": "FEED"}),
        ],
        {
            "position_ms": 35_000,
            "duration_ms": 600_000,
            "watched_ms": 35_000,
            "platform": "IOS",
            "source": None,  # the first event's
            "counted": True,
        },
    ),
    (
        [(0, {"content": "p1", "watched_ms": 400, "visible_fraction": 0.2, "source": "FEED"})],
        {
            "position_ms": None,
            "duration_ms": None,
            "watched_ms": 400,
            "platform": None,
            "source": "FEED",
            "counted": False,
        },
    ),
]


@pytest.mark.parametrize(("requests", "data"), IDLE_ENDS)
async def test_an_idle_end_says_what_the_session_was(
    deps, runtime, clock, workers, closer, video, requests, data
):
    for seconds, fields in requests:
        clock.advance(seconds=seconds)
        await record_views(deps, ALICE, [ev(**fields)], "KR")
    last_at = clock.at
    clock.advance(hours=1)
    assert await closer.run_once() == 1
    assert await closer.run_once() == 0  # once
    (end,) = await ends(runtime, workers)
    assert end["event_id"] == view_end_event_id(end["content_id"], "s1", "u:alice")
    assert end["occurred_at_ms"] == ms(last_at)  # its last event, not the close
    assert (end["actor"], end["deltas"], end["unique"]) == ("u:alice", {}, None)
    assert end["data"] == {"session_id": "s1", "region": "KR", "reason": "idle", **data}
    # The end went through the session's outbox (the relay prunes it once archived).
    doc = await runtime.db["view_sessions"].find_one({"_id": "s1"})
    assert [e["event_id"] for e in doc["outbox"] if e["kind"] == "view_end"] == [end["event_id"]]
    # A late event of an ended session is ignored: the session said its end.
    (late,) = await record_views(deps, ALICE, [ev(content=end["content_id"], watched_ms=1_000)])
    assert late.decision.reason == "session ended: event ignored"


async def test_only_the_idle_sessions_end(deps, runtime, clock, workers, closer, video):
    await record_views(deps, ALICE, [ev("quiet", watched_ms=1_000)])
    clock.advance(minutes=20)
    await record_views(deps, Actor("bob"), [ev("active", watched_ms=1_000)])
    clock.advance(minutes=11)
    assert await closer.run_once() == 1
    assert [e["data"]["session_id"] for e in await ends(runtime, workers)] == ["quiet"]
    assert not (await view_session(deps, Actor("bob"), "active")).ended
    clock.advance(minutes=20)
    assert await closer.run_once() == 1
    assert [e["data"]["session_id"] for e in await ends(runtime, workers)] == ["active", "quiet"]


async def test_a_pass_drains_every_idle_session_in_bounded_batches(
    deps, runtime, clock, workers, video
):
    for i in range(5):
        await record_views(deps, Actor(f"u{i}"), [ev(f"s{i}", watched_ms=1_000)])
    clock.advance(hours=1)
    closer, store = hooked_closer(runtime, deps, batch=2)
    assert await closer.run_once() == 5
    assert set(store.limits) == {2} and store.found == [2, 2, 1]
    assert len(await ends(runtime, workers)) == 5


async def test_an_event_that_arrives_while_closing_wins(deps, runtime, clock, workers, video):
    await record_views(deps, ALICE, [ev(watched_ms=10_000)])
    clock.advance(minutes=31)

    async def event_arrives():
        await record_views(deps, ALICE, [ev(watched_ms=25_000)])

    closer, _ = hooked_closer(runtime, deps, event_arrives)
    assert await closer.run_once() == 0  # the closer's write lost to the event's
    found = await view_session(deps, ALICE, "s1")
    assert not found.ended and found.watched_ms == 35_000 and found.counted
    assert await ends(runtime, workers) == []
    clock.advance(minutes=31)
    assert await closer.run_once() == 1
    (end,) = await ends(runtime, workers)
    assert end["data"]["watched_ms"] == 35_000 and end["data"]["counted"] is True
    assert end["occurred_at_ms"] == ms(clock.at - timedelta(minutes=31))


async def test_final_and_idle_end_a_session_once_under_one_id(
    deps, runtime, clock, workers, closer, video
):
    await record_views(deps, ALICE, [ev(watched_ms=10_000)])
    clock.advance(minutes=31)

    async def final_arrives():
        await record_views(deps, ALICE, [ev(watched_ms=0, final=True)])

    racing, _ = hooked_closer(runtime, deps, final_arrives)
    assert await racing.run_once() == 0  # read it open; the final event ended it first
    clock.advance(hours=2)
    assert await closer.run_once() == 0  # ended sessions are not idle
    (end,) = await ends(runtime, workers)
    assert end["data"]["reason"] == "final"
    assert end["event_id"] == view_end_event_id("v1", "s1", "u:alice")
    # Had the idle closer won instead, its end would have had the same id: an
    # archive or consumer that has one of them skips the other.
    await record_views(deps, ALICE, [ev("s2", watched_ms=10_000)])
    clock.advance(hours=1)
    assert await closer.run_once() == 1
    ids = {
        e["data"]["session_id"]: (e["event_id"], e["data"]["reason"])
        for e in await ends(runtime, workers)
    }
    assert ids["s2"] == (view_end_event_id("v1", "s2", "u:alice"), "idle")


async def test_a_lost_append_is_republished_by_the_relay(
    deps, runtime, clock, workers, closer, video, monkeypatch
):
    await record_views(deps, None, [ev(device_id="ph1", watched_ms=1_000)])
    clock.advance(hours=1)

    async def broken_append(events):
        raise ConnectionError("redis went away")

    monkeypatch.setattr(deps.log, "append", broken_append)
    assert await closer.run_once() == 1  # ended: safe in the outbox
    monkeypatch.undo()
    assert await ends(runtime, workers) == []
    relay = OutboxRelay(
        runtime.services.outboxes,
        workers["outbox_relay"]._archive,
        deps.log,
        clock,
        grace=timedelta(seconds=10),
    )
    assert (await relay.run_once()).republished == 1
    (end,) = await ends(runtime, workers)
    assert end["event_id"] == view_end_event_id("v1", "s1", "d:ph1")
    assert end["data"]["reason"] == "idle"
    assert (await relay.run_once()).republished == 0  # pruned
