"""engagementUpdated over graphql-transport-ws against the real server."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.e2e.helpers import (
    SECRET,
    SUBSCRIBE,
    GqlWs,
    Server,
    data_of,
    like,
    register,
    token,
    uid,
    wait_drained,
)

UPDATE_WITHIN_S = 5.0


def summary_of(payload: dict[str, Any]) -> dict[str, Any]:
    assert not payload.get("errors"), payload
    return payload["data"]["engagementUpdated"]


async def next_summary(ws: GqlWs, op_id: str, within: float = UPDATE_WITHIN_S) -> dict[str, Any]:
    return summary_of(await ws.next_payload(op_id, within))


async def until_likes(
    ws: GqlWs, op_id: str, cid: str, likes: int, within: float = UPDATE_WITHIN_S
) -> dict[str, Any]:
    """Read pushes until one for ``cid`` shows ``likes`` (bounded overall)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"no push with likes == {likes} for {cid} within {within}s")
        s = await next_summary(ws, op_id, left)
        if s["contentId"] == cid and s["likes"] == likes:
            return s


async def test_first_messages_are_current_summaries_then_updates(
    http: httpx.AsyncClient,
    likeview_server: Server,
    redis_probe: aioredis.Redis,
) -> None:
    a, b = await register(http), await register(http)
    data_of(await like(http, "early", b, "LAUGH"))
    await wait_drained(redis_probe, likeview_server)

    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init_with_token(token("watcher"))
        await ws.subscribe("1", SUBSCRIBE, {"ids": [a, b, a]})  # duplicates are merged
        first, second = await next_summary(ws, "1"), await next_summary(ws, "1")
        assert first == {"contentId": a, "likes": 0, "reactions": [], "viewerReaction": None}
        assert second["contentId"] == b
        assert second["likes"] == 1
        assert second["reactions"] == [{"reaction": "LAUGH", "count": 1}]

        data_of(await like(http, "later", a, "LIKE"))
        update = await next_summary(ws, "1")
        assert update == {
            "contentId": a,
            "likes": 1,
            "reactions": [{"reaction": "LIKE", "count": 1}],
            "viewerReaction": None,
        }
        await ws.complete("1")


async def test_viewer_reaction_is_the_subscribers_own(
    http: httpx.AsyncClient, likeview_server: Server, redis_probe: aioredis.Redis
) -> None:
    cid = await register(http)
    data_of(await like(http, "me", cid, "LOVE"))
    await wait_drained(redis_probe, likeview_server)
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init_with_token(token("me"))
        await ws.subscribe("s", SUBSCRIBE, {"ids": [cid]})
        first = await next_summary(ws, "s")
        assert first["viewerReaction"] == "LOVE"
        assert first["likes"] == 1
        data_of(await like(http, "someone-else", cid, "LIKE"))
        update = await until_likes(ws, "s", cid, 2)
        assert update["viewerReaction"] == "LOVE"


async def test_viewer_reaction_follows_the_subscribers_own_like(
    http: httpx.AsyncClient, likeview_server: Server
) -> None:
    cid = await register(http)
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init_with_token(token("self-liker"))
        await ws.subscribe("s", SUBSCRIBE, {"ids": [cid]})
        assert (await next_summary(ws, "s"))["viewerReaction"] is None
        data_of(await like(http, "self-liker", cid, "LIKE"))
        update = await until_likes(ws, "s", cid, 1)
        assert update["viewerReaction"] == "LIKE"


async def test_anonymous_connection_is_accepted(
    http: httpx.AsyncClient, likeview_server: Server
) -> None:
    cid = await register(http)
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init()  # no payload at all
        await ws.subscribe("anon", SUBSCRIBE, {"ids": [cid]})
        assert (await next_summary(ws, "anon"))["viewerReaction"] is None
        data_of(await like(http, "liker", cid))
        update = await until_likes(ws, "anon", cid, 1)
        assert update["viewerReaction"] is None
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init({})  # an empty payload too
        await ws.subscribe("anon", SUBSCRIBE, {"ids": [cid]})
        assert (await next_summary(ws, "anon"))["likes"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("Bearer garbage", id="garbage"),
        pytest.param(f"Bearer {token('late', ttl_s=-3600)}", id="expired"),
        pytest.param(f"Bearer {token('forger', secret=SECRET + '-nope')}", id="wrong-secret"),
        pytest.param("Basic dXNlcjpwYXNz", id="not-bearer"),
    ],
)
async def test_bad_token_closes_with_4403(likeview_server: Server, bad: str) -> None:
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.send({"type": "connection_init", "payload": {"authorization": bad}})
        code, _ = await ws.wait_closed()
        assert code == 4403


async def test_two_subscribers_both_get_the_update(
    http: httpx.AsyncClient, likeview_server: Server
) -> None:
    cid = await register(http)
    async with (
        GqlWs.connect(likeview_server.ws_url) as one,
        GqlWs.connect(likeview_server.ws_url) as two,
    ):
        for ws in (one, two):
            await ws.init_with_token(token(uid("viewer")))
            await ws.subscribe("x", SUBSCRIBE, {"ids": [cid]})
            assert (await next_summary(ws, "x"))["likes"] == 0
        data_of(await like(http, "popular", cid, "WOW"))
        for ws in (one, two):
            assert (await until_likes(ws, "x", cid, 1))["reactions"] == [
                {"reaction": "WOW", "count": 1}
            ]


@pytest.mark.parametrize(
    "ids",
    [
        pytest.param([""], id="empty-id"),
        pytest.param(["x" * 129], id="129-chars"),
        pytest.param([f"id-{i}" for i in range(101)], id="101-ids"),
    ],
)
async def test_bad_subscription_ids_are_bad_user_input(
    likeview_server: Server, ids: list[str]
) -> None:
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init()
        await ws.subscribe("bad", SUBSCRIBE, {"ids": ids})
        message = await ws.recv()
        assert message["id"] == "bad"
        if message["type"] == "next":
            errors = message["payload"]["errors"]
            assert (await ws.recv())["type"] == "complete"
        else:
            assert message["type"] == "error", message
            errors = message["payload"]
        assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]
        # the connection survives a failed operation
        await ws.subscribe("ok", SUBSCRIBE, {"ids": ["fine"]})
        assert (await next_summary(ws, "ok"))["contentId"] == "fine"


async def test_validation_error_is_an_error_message(likeview_server: Server) -> None:
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init()
        await ws.subscribe("v", 'subscription { engagementUpdated(contentIds: ["a"]) { nope } }')
        message = await ws.recv()
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_syntax_error_in_subscription_is_reported(likeview_server: Server) -> None:
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init()
        await ws.subscribe("p", 'subscription { engagementUpdated(contentIds: ["a"]) { likes }')
        message = await ws.recv()
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_burst_is_coalesced_and_ends_on_the_final_count(
    http: httpx.AsyncClient, likeview_server: Server
) -> None:
    cid = await register(http)
    total = 200
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init_with_token(token("burst-watcher"))
        await ws.subscribe("b", SUBSCRIBE, {"ids": [cid]})
        assert (await next_summary(ws, "b"))["likes"] == 0

        received: list[int] = []

        async def watch() -> None:
            while not received or received[-1] < total:
                s = await next_summary(ws, "b", within=30.0)
                received.append(s["likes"])

        watcher = asyncio.create_task(watch())
        gate = asyncio.Semaphore(25)

        async def one(i: int) -> None:
            async with gate:
                p = data_of(await like(http, f"burst-user-{i:03d}", cid, own_network=True))["like"]
                assert p["changed"] is True

        await asyncio.gather(*(one(i) for i in range(total)))
        await asyncio.wait_for(watcher, 60.0)

        assert received[-1] == total
        assert received == sorted(received), "pushes went backwards"
        assert len(received) < total // 2, f"{len(received)} pushes for {total} likes"
        # Nothing after the final count contradicts it.
        try:
            late = await next_summary(ws, "b", within=1.0)
        except TimeoutError:
            pass
        else:
            assert late["likes"] == total


async def test_off_the_shelf_client_gql(http: httpx.AsyncClient, likeview_server: Server) -> None:
    # gql's graphql-transport-ws transport, unchanged: what a Python client would use.
    from gql import Client, gql
    from gql.transport.websockets import WebsocketsTransport

    cid = await register(http)
    transport = WebsocketsTransport(
        url=likeview_server.ws_url,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"authorization": f"Bearer {token('gql-user')}"},
    )
    async with Client(transport=transport) as session:
        stream = session.subscribe(gql(SUBSCRIBE), variable_values={"ids": [cid]})
        first = await asyncio.wait_for(anext(stream), UPDATE_WITHIN_S)
        assert first["engagementUpdated"]["likes"] == 0
        data_of(await like(http, "gql-liker", cid))
        update = await asyncio.wait_for(anext(stream), UPDATE_WITHIN_S)
        assert update["engagementUpdated"]["likes"] == 1


async def test_browser_origins_are_checked(likeview_server: Server) -> None:
    from websockets.exceptions import InvalidStatus

    from tests.e2e.helpers import ALLOWED_ORIGINS

    for origin in ALLOWED_ORIGINS:
        async with GqlWs.connect(likeview_server.ws_url, origin=origin) as ws:
            await ws.init_with_token(None)
    with pytest.raises(InvalidStatus) as refused:
        async with GqlWs.connect(likeview_server.ws_url, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_the_server_declines_per_message_compression(likeview_server: Server) -> None:
    # The client offers permessage-deflate (websockets does by default); pushes
    # are ~100-byte frames to many sockets, so serve turns compression off.
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        offered = ws.ws.request.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in offered
        assert ws.ws.response.headers.get("Sec-WebSocket-Extensions") is None
