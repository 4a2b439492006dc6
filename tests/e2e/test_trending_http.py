"""Trending and ranking signals over HTTP and WebSocket, after real likes: the list
and its order, the kind and region filters, the limits, the signals, and the live
list. A server of its own (trending is global), with a trusted region header."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import serving
from tests.e2e.helpers import (
    GqlWs,
    Server,
    data_of,
    eventually,
    gql,
    register,
    single_error_code,
    token,
    uid,
)

TRENDING = """
query T($w: TrendWindow!, $k: ContentKind, $r: String, $n: Int) {
  trending(window: $w, kind: $k, region: $r, first: $n) {
    rank score content { contentId kind }
  }
}"""

TRENDING_WITH_SIGNALS = """
query T($w: TrendWindow!) {
  trending(window: $w, first: 5) {
    rank content { contentId }
    ... on TrendingItem { signals { contentId likesPerMinute { fifteenMinutes } } }
  }
}"""

SIGNALS = """
query S($ids: [ID!]!) {
  rankingSignals(contentIds: $ids) {
    contentId
    likesPerMinute { oneMinute fifteenMinutes oneHour }
    viewsPerMinute { oneMinute fifteenMinutes oneHour }
    growthSlope velocityRatio engagementRatio viewToLikeConversion
    uniqueViewers averageWatchMs updatedAt
  }
}"""

LIVE = """
subscription L($w: TrendWindow!) {
  trendingUpdated(window: $w) { rank content { contentId } }
}"""

LIKE = "mutation($i: LikeInput!) { like(input: $i) { changed } }"
REGION_HEADER = "X-Viewer-Country"


@pytest.fixture(scope="module")
def likeview_server(redis_proc: Any, tmp_path_factory: Any) -> Iterator[Server]:
    with serving(
        redis_proc,
        tmp_path_factory,
        CLIENT_REGION_HEADER=REGION_HEADER,
        TRUSTED_PROXIES="127.0.0.1/32",
    ) as server:
        yield server


async def likes(http: httpx.AsyncClient, cid: str, n: int, region: str | None = None) -> None:
    """``n`` likes of ``cid`` by ``n`` new users."""
    headers = {REGION_HEADER: region} if region else None
    for _ in range(n):
        body = await gql(
            http, LIKE, {"i": {"contentId": cid}}, bearer=token(uid("fan")), headers=headers
        )
        assert data_of(body)["like"]["changed"] is True


async def listed(http: httpx.AsyncClient, **variables: Any) -> list[dict[str, Any]]:
    body = await gql(http, TRENDING, {"w": "FIVE_MINUTES", **variables})
    return list(data_of(body)["trending"])


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["content"]["contentId"] for i in items]


async def test_the_list_its_filters_signals_and_live_pushes(
    http: httpx.AsyncClient, likeview_server: Server
) -> None:
    a, b = await register(http, uid("a")), await register(http, uid("b"))
    post = await register(http, uid("p"), kind="POST")
    await likes(http, a, 4, region="US")
    await likes(http, post, 2, region="FR")
    await likes(http, b, 1)

    # Heat grows with the excess over the baseline: 4 likes > 2 > 1.
    items = await eventually(
        lambda: listed(http),
        lambda got: ids(got) == [a, post, b],
        within=15,
        what="the trending worker ranked the three contents",
    )
    assert [i["rank"] for i in items] == [1, 2, 3]
    assert items[0]["score"] > items[1]["score"] > items[2]["score"] > 0
    assert [i["content"]["kind"] for i in items] == ["VIDEO", "POST", "VIDEO"]

    assert ids(await listed(http, k="POST")) == [post]
    assert ids(await listed(http, k="VIDEO")) == [a, b]
    assert ids(await listed(http, r="US")) == [a]
    assert ids(await listed(http, r="unknown")) == [b]
    assert ids(await listed(http, r="FR", k="VIDEO")) == []
    assert ids(await listed(http, n=2)) == [a, post]
    for window in ("HOUR", "DAY"):
        body = await gql(http, TRENDING, {"w": window})
        assert ids(data_of(body)["trending"]) == [a, post, b]

    body = await gql(http, TRENDING_WITH_SIGNALS, {"w": "FIVE_MINUTES"})
    first = data_of(body)["trending"][0]
    assert first["signals"]["contentId"] == a
    assert first["signals"]["likesPerMinute"]["fifteenMinutes"] == pytest.approx(4 / 15)

    never = uid("never")
    body = await gql(http, SIGNALS, {"ids": [b, never, a]})
    sb, sn, sa = data_of(body)["rankingSignals"]
    assert [sb["contentId"], sn["contentId"], sa["contentId"]] == [b, never, a]
    # Every like fell within the last 15 minutes, whole minutes inside the window.
    assert sa["likesPerMinute"]["fifteenMinutes"] == pytest.approx(4 / 15)
    assert sa["likesPerMinute"]["oneHour"] == pytest.approx(4 / 60)
    assert sa["viewsPerMinute"] == {"oneMinute": 0.0, "fifteenMinutes": 0.0, "oneHour": 0.0}
    assert sa["engagementRatio"] is None and sa["averageWatchMs"] is None
    assert sa["velocityRatio"] is None  # no views in the hour before
    assert sa["updatedAt"] is not None
    assert sb["likesPerMinute"]["oneHour"] == pytest.approx(1 / 60)
    assert sn == {
        "contentId": never,
        "likesPerMinute": {"oneMinute": 0.0, "fifteenMinutes": 0.0, "oneHour": 0.0},
        "viewsPerMinute": {"oneMinute": 0.0, "fifteenMinutes": 0.0, "oneHour": 0.0},
        "growthSlope": 0.0,
        "velocityRatio": None,
        "engagementRatio": None,
        "viewToLikeConversion": None,
        "uniqueViewers": 0,
        "averageWatchMs": None,
        "updatedAt": None,
    }

    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init()
        await ws.subscribe("t", LIVE, {"w": "FIVE_MINUTES"})
        current = (await ws.next_payload("t"))["data"]["trendingUpdated"]
        assert ids(current) == [a, post, b]
        # b takes off: ten more likes put it first, and the list is pushed.
        await likes(http, b, 10)
        while True:
            pushed = (await ws.next_payload("t", within=15))["data"]["trendingUpdated"]
            if ids(pushed)[0] == b:
                break
        assert sorted(ids(pushed)) == sorted([a, post, b])
        await ws.complete("t")


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"r": "usa"}, "region"),
        ({"r": "us"}, "region"),
        ({"n": 0}, "first"),
        ({"n": 101}, "first"),
    ],
)
async def test_bad_arguments_are_typed_errors(
    http: httpx.AsyncClient, variables: dict[str, Any], fragment: str
) -> None:
    body = await gql(http, TRENDING, {"w": "HOUR", **variables})
    assert single_error_code(body) == "BAD_USER_INPUT"
    assert fragment in body["errors"][0]["message"]


async def test_at_most_100_ids_of_signals(http: httpx.AsyncClient) -> None:
    body = await gql(http, SIGNALS, {"ids": [f"c{i}" for i in range(101)]})
    assert single_error_code(body) == "BAD_USER_INPUT"
    assert "100" in body["errors"][0]["message"]
