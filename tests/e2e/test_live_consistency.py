"""Live pushes are consistent snapshots that never go backwards, seen by gql.

The subscriber is the only one reacting to its content, so a consistent push
is easy to state: its counts are exactly what its viewerReaction implies.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.e2e.helpers import (
    SUBSCRIBE,
    Server,
    counts,
    data_of,
    eventually,
    like,
    register,
    summary,
    token,
    uid,
)

WITHIN_S = 5.0
# After the expected final push, how long to keep listening for a stray one.
QUIET_S = 1.0

Push = dict[str, Any]


class Pushes:
    """The pushes of one gql subscription, read with bounded waits."""

    def __init__(self, queue: asyncio.Queue[Push]) -> None:
        self._queue = queue
        self.seen: list[Push] = []

    async def next(self, within: float = WITHIN_S) -> Push:
        push = await asyncio.wait_for(self._queue.get(), within)
        self.seen.append(push)
        return push

    async def until(self, wanted: Callable[[Push], bool], within: float = WITHIN_S) -> list[Push]:
        """Every push up to and including the first that is ``wanted``."""
        deadline = asyncio.get_running_loop().time() + within
        got: list[Push] = []
        while not got or not wanted(got[-1]):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no wanted push within {within}s; got {got}")
            got.append(await self.next(left))
        return got

    async def stray(self) -> list[Push]:
        """Whatever else arrives within QUIET_S."""
        got: list[Push] = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(await self.next(QUIET_S))
        return got


@contextlib.asynccontextmanager
async def subscribed(server: Server, user: str, content_id: str) -> AsyncIterator[Pushes]:
    # gql's graphql-transport-ws transport, unchanged, as a client app would use it.
    transport = WebsocketsTransport(
        url=server.ws_url,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"authorization": f"Bearer {token(user)}"},
    )
    queue: asyncio.Queue[Push] = asyncio.Queue()
    async with Client(transport=transport) as session:
        request = GraphQLRequest(SUBSCRIBE, variable_values={"ids": [content_id]})

        async def pump() -> None:
            async for result in session.subscribe(request):
                queue.put_nowait(result["engagementUpdated"])

        # A reader task, so a bounded wait never cancels gql's own generator.
        reader = asyncio.create_task(pump())
        try:
            yield Pushes(queue)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def consistent(push: Push) -> bool:
    """Only the subscriber reacts: its reaction alone explains the counts."""
    mine = push["viewerReaction"]
    if mine is None:
        return push["likes"] == 0 and push["reactions"] == []
    return push["likes"] == 1 and counts(push) == {mine: 1}


def showing(reaction: str) -> Callable[[Push], bool]:
    return lambda push: bool(push["viewerReaction"] == reaction)


def shown(push: Push) -> tuple[Any, ...]:
    return (push["likes"], tuple(sorted(counts(push).items())), push["viewerReaction"])


def assert_well_ordered(pushes: list[Push], after: Push) -> None:
    """Consistent, never behind the acknowledged mutation ``after``, never repeated."""
    assert all(consistent(p) for p in pushes), pushes
    previous = shown(after)
    for p in pushes:
        if p["viewerReaction"] != after["viewerReaction"]:
            raise AssertionError(f"a push went back before the acknowledged change: {pushes}")
        assert shown(p) != previous or p is pushes[0], f"repeated push: {pushes}"
        previous = shown(p)


async def test_a_like_never_comes_back_paired_with_older_counts(
    http: httpx.AsyncClient, likeview_server: Server
) -> None:
    cid = await register(http)
    user = uid("liker")
    async with subscribed(likeview_server, user, cid) as pushes:
        first = await pushes.next()
        assert (first["likes"], first["viewerReaction"]) == (0, None)

        response = data_of(await like(http, user, cid, "LIKE"))["like"]["summary"]
        assert (response["likes"], response["viewerReaction"]) == (1, "LIKE")

        later = await pushes.until(showing("LIKE"))
        later += await pushes.stray()
        assert later[-1] == response
        assert_well_ordered(later, response)
        assert all(shown(a) != shown(b) for a, b in itertools.pairwise(pushes.seen)), pushes.seen


async def test_a_switch_never_shows_the_new_reaction_with_the_old_counts(
    http: httpx.AsyncClient, likeview_server: Server
) -> None:
    cid = await register(http)
    user = uid("switcher")
    data_of(await like(http, user, cid, "LOVE"))
    # Anonymous readers see the LOVE once the aggregator applied it.
    await eventually(lambda: summary(http, cid), lambda s: s["likes"] == 1, what="LOVE applied")
    async with subscribed(likeview_server, user, cid) as pushes:
        first = await pushes.next()
        assert (counts(first), first["viewerReaction"]) == ({"LOVE": 1}, "LOVE")
        steps = ["LAUGH", "WOW", "LOVE", "LAUGH"]
        for reaction in steps:
            response = data_of(await like(http, user, cid, reaction))["like"]["summary"]
            assert counts(response) == {reaction: 1}
            later = await pushes.until(showing(reaction))
            # The last step is not followed by another: wait out stray pushes there.
            if reaction == steps[-1]:
                later += await pushes.stray()
            assert later[-1] == response
            assert_well_ordered(later, response)
        assert all(consistent(p) for p in pushes.seen), pushes.seen
        assert all(shown(a) != shown(b) for a, b in itertools.pairwise(pushes.seen)), pushes.seen
