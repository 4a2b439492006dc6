"""Live pushes on real Redis and mongomock: versions, order, the viewer's own changes.

The subscription resolver runs in process against the runtime's hub. To show
that a message produced no push without waiting out a timer, each check
publishes a marker on a second channel once the message was taken: the next
push is then the message's own if it made one, else the marker's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import strawberry

from domain import reads
from domain.catalog import register_content
from domain.contents import ContentKind
from domain.identity import Actor
from domain.likes import set_reaction
from domain.ports import CounterReading, Publisher
from domain.reactions import ReactionType as R
from resolvers.context import Context, Loaders
from resolvers.live import engagement_updated
from schema.engagement import EngagementSummary
from storage.keys import Keys
from storage.redis_stream import RedisEventConsumer
from subscriptions.hub import Subscription
from subscriptions.messages import LiveChannels, encode_counts, encode_mine
from tests.integration.conftest import SERVICE
from workers.aggregator import Aggregator

ALICE, BOB = Actor("alice"), Actor("bob")
MARKER = "marker"  # never registered: its counters exist only in the messages below
TIMEOUT = 5.0


async def version_of(runtime: Any, cid: str) -> int:
    reading = (await runtime.deps.counters.read([cid]))[cid]
    assert reading is not None
    return int(reading.version)


class Live:
    """One engagementUpdated subscription, read continuously into a queue."""

    def __init__(
        self,
        runtime: Any,
        gen: AsyncIterator[EngagementSummary],
        subs: list[Subscription],
        offered: list[str | None],
    ) -> None:
        self._runtime = runtime
        self._queue: asyncio.Queue[EngagementSummary] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read(gen))
        self._subs = subs
        self.offered = offered
        self._marker = 0

    async def _read(self, gen: AsyncIterator[EngagementSummary]) -> None:
        async for push in gen:
            self._queue.put_nowait(push)

    async def stop(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    @property
    def sub(self) -> Subscription:
        (sub,) = self._subs
        return sub

    async def next(self) -> EngagementSummary:
        getter = asyncio.ensure_future(self._queue.get())
        await asyncio.wait({getter, self._reader}, timeout=TIMEOUT, return_when="FIRST_COMPLETED")
        if getter.done():
            return getter.result()
        getter.cancel()
        if self._reader.done():
            self._reader.result()  # the subscription's own error, if it failed
            pytest.fail("the subscription ended")
        pytest.fail(f"no push within {TIMEOUT}s")

    async def pushes_after(self, channel: str, message: str) -> list[EngagementSummary]:
        """Publish ``message``; return the pushes up to the marker published once the
        message was taken: its own, and any of messages published before it."""
        hub = self._runtime.services.hub
        await hub.publish(channel, message)
        # Offered to the subscription, and taken by the resolver.
        await _eventually(lambda: message in self.offered and self.sub.pending == 0)
        self._marker += 1
        marker = CounterReading({"likes": self._marker}, 0, version=self._marker)
        marker_channel = LiveChannels(self._runtime.services.keys).content(MARKER)
        await hub.publish(marker_channel, encode_counts(MARKER, marker))
        got: list[EngagementSummary] = []
        while True:
            push = await self.next()
            if push.content_id == MARKER:
                assert push.likes == self._marker
                return got
            got.append(push)


async def _eventually(condition: Any) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        if condition():
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {TIMEOUT}s")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def live(
    runtime: Any, monkeypatch: pytest.MonkeyPatch, actor: Actor | None, cid: str
) -> AsyncIterator[Live]:
    hub = runtime.services.hub
    subscribe = hub.subscribe
    subs: list[Subscription] = []
    offered: list[str | None] = []

    @contextlib.asynccontextmanager
    async def spy(channels: Any, **options: Any) -> AsyncIterator[Subscription]:
        async with subscribe(channels, **options) as sub:
            offer = sub._offer

            def noting(name: str, message: str | None) -> None:
                offered.append(message)
                offer(name, message)

            monkeypatch.setattr(sub, "_offer", noting)
            subs.append(sub)
            yield sub

    monkeypatch.setattr(hub, "subscribe", spy)
    ctx = Context(runtime.services, actor, Loaders(runtime.deps, actor))
    info: Any = SimpleNamespace(context=ctx)  # the resolver reads only the context
    gen = engagement_updated(info, [strawberry.ID(cid), strawberry.ID(MARKER)])
    subscription = Live(runtime, gen, subs, offered)
    try:
        yield subscription
    finally:
        await subscription.stop()


@pytest.fixture
async def video(deps: Any) -> str:
    await register_content(deps, SERVICE, "v1", "creator", ContentKind.VIDEO, 120_000)
    # Counters exist from here on, so the aggregator's changes are published.
    await reads.summaries(deps, None, ["v1"])
    return "v1"


def channel(runtime: Any, cid: str) -> str:
    return LiveChannels(runtime.services.keys).content(cid)


def stale(cid: str, tag: int) -> str:
    """A counts message older than any the aggregator publishes, distinct per tag."""
    return encode_counts(cid, CounterReading({"likes": tag}, 0, version=0))


def state(push: EngagementSummary) -> tuple[int, dict[Any, int], Any]:
    return push.likes, {r.reaction: r.count for r in push.reactions}, push.viewer_reaction


# -- versions in Redis -------------------------------------------------------------


async def test_versions_grow_with_every_change_and_every_recount(
    runtime: Any, deps: Any, workers: Any, video: str
) -> None:
    seen = [await version_of(runtime, video)]
    await set_reaction(deps, ALICE, video, R.LIKE)
    await workers["aggregator"].run_once()
    seen.append(await version_of(runtime, video))
    await set_reaction(deps, BOB, video, R.LOVE)
    await workers["aggregator"].run_once()
    seen.append(await version_of(runtime, video))
    await reads.rebuild(deps, [video], replace=True)
    seen.append(await version_of(runtime, video))
    assert seen == sorted(set(seen)), seen


# -- the aggregator ------------------------------------------------------------------


class Recording:
    """A publisher that notes, for each call, whether the like had been applied."""

    def __init__(self, runtime: Any, inner: Publisher) -> None:
        self._runtime = runtime
        self._inner = inner
        self.calls: list[tuple[list[str], int]] = []

    async def publish(self, messages: Any) -> None:
        (s,) = await reads.summaries(self._runtime.deps, None, ["v1"])
        self.calls.append((sorted(messages), s.likes))
        await self._inner.publish(messages)


async def test_your_reactions_change_is_said_before_the_counters_change(
    runtime: Any, deps: Any, video: str, app_redis: Any
) -> None:
    keys: Keys = runtime.services.keys
    recording = Recording(runtime, runtime.workers["aggregator"]._publisher)
    aggregator = Aggregator(
        RedisEventConsumer(app_redis, keys, Keys.AGGREGATOR_GROUP, "recording"),
        deps.counters,
        recording,
        keys.channel,
        keys.user_channel,
    )
    await set_reaction(deps, ALICE, video, R.LIKE)
    await aggregator.run_once()
    assert recording.calls == [
        ([keys.user_channel("alice")], 0),
        ([keys.channel(video)], 1),
    ]


# -- the subscription ------------------------------------------------------------------


async def test_older_and_unchanged_counts_are_not_pushed(
    runtime: Any, deps: Any, workers: Any, video: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await set_reaction(deps, BOB, video, R.LIKE)
    await workers["aggregator"].run_once()
    v = await version_of(runtime, video)
    async with live(runtime, monkeypatch, None, video) as sub:
        assert state(await sub.next()) == (1, {R.LIKE: 1}, None)
        await sub.next()  # the marker's first state
        ch = channel(runtime, video)
        older = encode_counts(video, CounterReading({}, 0, version=v - 1))
        assert await sub.pushes_after(ch, older) == []
        same_version = encode_counts(video, CounterReading({"likes": 7}, 0, version=v))
        assert await sub.pushes_after(ch, same_version) == []
        unchanged = encode_counts(
            video, CounterReading({"likes": 1, "r:LIKE": 1}, 0, version=v + 5)
        )
        assert await sub.pushes_after(ch, unchanged) == []
        newer = encode_counts(video, CounterReading({"likes": 2, "r:LIKE": 2}, 0, version=v + 6))
        assert [state(p) for p in await sub.pushes_after(ch, newer)] == [(2, {R.LIKE: 2}, None)]
        assert await sub.pushes_after(ch, older) == []


async def test_own_change_waits_for_counts_that_include_it(
    runtime: Any, deps: Any, workers: Any, video: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = LiveChannels(runtime.services.keys)
    async with live(runtime, monkeypatch, ALICE, video) as sub:
        assert state(await sub.next()) == (0, {}, None)
        await sub.next()
        v = await version_of(runtime, video)
        response = await set_reaction(deps, ALICE, video, R.LIKE)
        assert response.summary.likes == 1
        # The aggregator's "your reactions change", before it applies the like:
        # the subscription shows the like with counts that include it.
        mine = await sub.pushes_after(keys.user("alice"), encode_mine([video]))
        assert [state(p) for p in mine] == [(1, {R.LIKE: 1}, R.LIKE)]
        # Another worker's newer counts that lack the like are not shown as they are.
        lacking = encode_counts(video, CounterReading({}, 0, version=v + 1))
        assert await sub.pushes_after(keys.content(video), lacking) == []
        # Once applied, the counts agree with what was shown: nothing new to push.
        await workers["aggregator"].run_once()
        assert await sub.pushes_after(keys.content(video), stale(video, 1)) == []
        bob = await set_reaction(deps, BOB, video, R.LOVE)
        assert bob.changed
        await workers["aggregator"].run_once()
        assert [state(p) for p in await sub.pushes_after(keys.content(video), stale(video, 2))] == [
            (2, {R.LIKE: 1, R.LOVE: 1}, R.LIKE)
        ]


async def test_a_switch_is_never_shown_with_the_old_counts(
    runtime: Any, deps: Any, workers: Any, video: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await set_reaction(deps, ALICE, video, R.LOVE)
    await workers["aggregator"].run_once()
    async with live(runtime, monkeypatch, ALICE, video) as sub:
        assert state(await sub.next()) == (1, {R.LOVE: 1}, R.LOVE)
        await sub.next()
        await set_reaction(deps, ALICE, video, R.LAUGH)
        await workers["aggregator"].run_once()
        # Everything the aggregator published reaches the subscription before this.
        pushes = await sub.pushes_after(channel(runtime, video), stale(video, 1))
        assert [state(p) for p in pushes] == [(1, {R.LAUGH: 1}, R.LAUGH)]
