"""Creator notifications over HTTP and WebSocket, from real likes: the first like
arrives in the query and over notificationReceived, marking read, preferences, and
nobody else reads a creator's notifications. A server of its own, with short
settle and digest delays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.e2e.conftest import serving
from tests.e2e.helpers import (
    GqlWs,
    Server,
    data_of,
    eventually,
    gql,
    like,
    register,
    single_error_code,
    token,
    uid,
)

NOTIFICATIONS = """
query N($first: Int, $unread: Boolean, $creator: ID) {
  notifications(first: $first, unreadOnly: $unread, creatorId: $creator) {
    edges { cursor node {
      id kind text createdAt readAt content { contentId creatorId }
      payload {
        __typename
        ... on FirstLikePayload { actor }
        ... on DigestPayload { actors count foldedCount }
        ... on MilestonePayload { metric threshold }
      }
    } }
    hasNextPage endCursor
  }
}"""

UNREAD = "query U($creator: ID) { unreadNotificationCount(creatorId: $creator) }"
MARK = "mutation M($i: MarkNotificationsReadInput!) { markNotificationsRead(input: $i) }"
PREFS = "{ notificationPreferences { mutedKinds mutedContentIds } }"
SET_PREFS = """
mutation P($i: NotificationPreferencesInput!) {
  updateNotificationPreferences(input: $i) { mutedKinds mutedContentIds }
}"""
LIVE = """
subscription { notificationReceived { id kind text content { contentId }
  payload { ... on FirstLikePayload { actor } } } }"""


@pytest.fixture(scope="module")
def likeview_server(redis_proc: Any, tmp_path_factory: Any) -> Iterator[Server]:
    with serving(
        redis_proc, tmp_path_factory, INTEGRITY_SETTLE_S="0.5", NOTIFY_DIGEST_S="1"
    ) as server:
        yield server


async def listed(http: httpx.AsyncClient, creator: str, **variables: Any) -> list[dict]:
    body = await gql(http, NOTIFICATIONS, variables, bearer=token(creator))
    return [e["node"] for e in data_of(body)["notifications"]["edges"]]


async def test_a_first_like_arrives_in_the_query_and_the_subscription(
    http: httpx.AsyncClient, likeview_server: Server, redis_probe: aioredis.Redis
):
    creator = uid("creator")
    cid = await register(http, creator_id=creator)
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init_with_token(token(creator))
        await ws.subscribe("n", LIVE)
        channel = f"{likeview_server.key_prefix}:notify:{creator}"
        await eventually(
            lambda: redis_probe.pubsub_channels(channel),
            bool,
            what="the subscription listens on the creator's channel",
        )
        fan = uid("fan")
        assert data_of(await like(http, fan, cid))["like"]["changed"] is True
        pushed: list[dict[str, Any]] = []
        while not any(p["kind"] == "FIRST_LIKE" for p in pushed):
            pushed.append((await ws.next_payload("n", within=15))["data"]["notificationReceived"])
        first = next(p for p in pushed if p["kind"] == "FIRST_LIKE")
        assert first["payload"] == {"actor": fan}
        assert first["content"] == {"contentId": cid}
        assert first["text"] == f"{fan} liked your video {cid}: its first like"

    rows = await eventually(
        lambda: listed(http, creator),
        lambda rows: any(r["kind"] == "FIRST_LIKE" for r in rows),
        what="the first like in the connection",
    )
    node = next(r for r in rows if r["kind"] == "FIRST_LIKE")
    assert node["id"] == first["id"] and node["readAt"] is None
    assert node["content"] == {"contentId": cid, "creatorId": creator}
    assert node["payload"] == {"__typename": "FirstLikePayload", "actor": fan}

    # A second like (the same fan again after an unlike) is no second first like;
    # the digest of the window comes on its own.
    digests = await eventually(
        lambda: listed(http, creator),
        lambda rows: any(r["kind"] == "REACTIONS_DIGEST" for r in rows),
        what="the digest of the first window",
    )
    digest = next(r for r in digests if r["kind"] == "REACTIONS_DIGEST")
    assert digest["payload"]["actors"] == [fan] and digest["payload"]["count"] == 1

    unread = data_of(await gql(http, UNREAD, bearer=token(creator)))["unreadNotificationCount"]
    assert unread == len(digests)
    marked = await gql(http, MARK, {"i": {"ids": [node["id"]]}}, bearer=token(creator))
    assert data_of(marked)["markNotificationsRead"] == 1
    again = await gql(http, MARK, {"i": {"ids": [node["id"]]}}, bearer=token(creator))
    assert data_of(again)["markNotificationsRead"] == 0
    rest = await gql(http, MARK, {"i": {"upTo": digests[0]["id"]}}, bearer=token(creator))
    assert data_of(rest)["markNotificationsRead"] == len(digests) - 1
    assert await listed(http, creator, unread=True) == []
    read = await listed(http, creator)
    assert all(r["readAt"] is not None for r in read)


async def test_only_the_creator_or_an_admin_reads_them(http: httpx.AsyncClient):
    creator = uid("creator")
    cid = await register(http, creator_id=creator)
    await like(http, uid("fan"), cid)
    await eventually(lambda: listed(http, creator), bool, what="a notification")
    other = token(uid("other"))
    for query in (NOTIFICATIONS, UNREAD):
        body = await gql(http, query, {"creator": creator}, bearer=other)
        assert single_error_code(body) == "FORBIDDEN"
        assert body.get("data") is None
    assert await listed(http, uid("other")) == []
    admin = await gql(http, NOTIFICATIONS, {"creator": creator}, bearer=token("ops", ["admin"]))
    assert data_of(admin)["notifications"]["edges"]
    anonymous = await gql(http, UNREAD)
    assert single_error_code(anonymous) == "UNAUTHENTICATED"
    # Another creator's id marks nothing and says nothing about it.
    [mine, *_] = await listed(http, creator)
    body = await gql(http, MARK, {"i": {"upTo": mine["id"]}}, bearer=other)
    assert single_error_code(body) == "BAD_USER_INPUT"
    body = await gql(http, MARK, {"i": {"ids": [mine["id"]]}}, bearer=other)
    assert data_of(body)["markNotificationsRead"] == 0


async def test_preferences_mute_kinds_and_contents(http: httpx.AsyncClient):
    creator = uid("creator")
    muted, heard = (
        await register(http, creator_id=creator),
        await register(http, creator_id=creator),
    )
    body = await gql(
        http,
        SET_PREFS,
        {"i": {"mutedKinds": ["REACTIONS_DIGEST"], "mutedContentIds": [muted]}},
        bearer=token(creator),
    )
    assert data_of(body)["updateNotificationPreferences"] == {
        "mutedKinds": ["REACTIONS_DIGEST"],
        "mutedContentIds": [muted],
    }
    prefs = data_of(await gql(http, PREFS, bearer=token(creator)))["notificationPreferences"]
    assert prefs["mutedContentIds"] == [muted]
    await like(http, uid("fan"), muted)
    await like(http, uid("fan"), heard)
    rows = await eventually(lambda: listed(http, creator), bool, what="a notification")
    assert [(r["kind"], r["content"]["contentId"]) for r in rows] == [("FIRST_LIKE", heard)]
