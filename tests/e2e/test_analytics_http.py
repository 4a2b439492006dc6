"""Creator analytics over HTTP: a dashboard's numbers after real likes and views, who
may ask, the range limits, and the viewer's region from a trusted proxy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import serving
from tests.e2e.helpers import (
    REGISTER,
    Server,
    data_of,
    eventually,
    gql,
    like,
    service_token,
    single_error_code,
    token,
    uid,
)

DASHBOARD = """
query Dash($id: ID!, $r: TimeRange!, $g: Granularity!) {
  contentAnalytics(contentId: $id, range: $r, granularity: $g) {
    contentId from to granularity
    totals {
      likesAdded likesRemoved netLikes views uniqueViewers watchTimeMs averageWatchMs
      likeToViewRatio engagementRate
    }
    series { start likesAdded likesRemoved netLikes views watchTimeMs }
    reactions { reaction net }
    byPlatform { key views watchTimeMs likesAdded }
    bySource { key views watchTimeMs likesAdded }
    byRegion { key views watchTimeMs likesAdded }
    completion { sessions average histogram }
    timeToFirstLikeMs
    lifetime { likes views }
  }
}"""

CREATOR = """
query Creator($c: ID!, $r: TimeRange!, $top: Int) {
  creatorAnalytics(creatorId: $c, range: $r, granularity: DAY, top: $top) {
    creatorId granularity
    totals { likesAdded views watchTimeMs }
    series { start views }
    topByViews { contentId views likesAdded }
    topByLikes { contentId views likesAdded }
  }
}"""

UNLIKE = "mutation($i: UnlikeInput!) { unlike(input: $i) { changed } }"
VIEWS = "mutation($v: [ViewInput!]!) { recordViews(inputs: $v) { decision { counted } } }"


def window(hours_before: float = 1, hours_after: float = 1) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "from": (now - timedelta(hours=hours_before)).isoformat(),
        "to": (now + timedelta(hours=hours_after)).isoformat(),
    }


async def register_video(http: httpx.AsyncClient, creator: str, duration_ms: int = 60_000) -> str:
    cid = uid("an")
    body = await gql(
        http,
        REGISTER,
        {
            "input": {
                "contentId": cid,
                "creatorId": creator,
                "kind": "VIDEO",
                "durationMs": duration_ms,
            }
        },
        bearer=service_token(),
    )
    data_of(body)
    return cid


async def record(
    http: httpx.AsyncClient, events: list[dict[str, Any]], *, bearer: str | None = None, **h: str
) -> list[bool]:
    body = await gql(http, VIEWS, {"v": events}, bearer=bearer, headers=h or None)
    return [r["decision"]["counted"] for r in data_of(body)["recordViews"]]


async def dashboard(
    http: httpx.AsyncClient, cid: str, bearer: str, granularity: str = "MINUTE"
) -> dict[str, Any]:
    body = await gql(http, DASHBOARD, {"id": cid, "r": window(), "g": granularity}, bearer=bearer)
    return body


async def test_a_dashboard_after_likes_unlikes_switches_and_views(http: httpx.AsyncClient) -> None:
    creator = uid("creator")
    cid = await register_video(http, creator)
    for user, reaction in (("u1", "LIKE"), ("u2", "LIKE"), ("u3", "LOVE")):
        data_of(await like(http, f"{user}-{cid}", cid, reaction))
    data_of(await gql(http, UNLIKE, {"i": {"contentId": cid}}, bearer=token(f"u2-{cid}")))
    data_of(await like(http, f"u1-{cid}", cid, "WOW"))  # a switch: neither added nor removed
    # v1 watches half the video on iOS and counts; a device watches 5 s and does not.
    counted = await record(
        http,
        [
            {
                "contentId": cid,
                "sessionId": f"s1-{cid}",
                "watchedMs": 31_000,
                "positionMs": 30_000,
                "platform": "IOS",
                "source": "FEED",
                "final": True,
            }
        ],
        bearer=token(f"v1-{cid}"),
    )
    assert counted == [True]
    counted = await record(
        http,
        [
            {
                "contentId": cid,
                "sessionId": f"s2-{cid}",
                "deviceId": f"d2-{cid}",
                "watchedMs": 5_000,
                "positionMs": 6_000,
                "final": True,
            }
        ],
    )
    assert counted == [False]

    def settled(body: dict[str, Any]) -> bool:
        a = (body.get("data") or {}).get("contentAnalytics")
        return a is not None and a["totals"]["views"] == 1 and a["completion"]["sessions"] == 2

    body = await eventually(
        lambda: dashboard(http, cid, token(creator)),
        settled,
        within=15,
        what="the analytics worker applied the likes and views",
    )
    a = data_of(body)["contentAnalytics"]
    assert a["contentId"] == cid and a["granularity"] == "MINUTE"
    assert a["totals"] == {
        "likesAdded": 3,
        "likesRemoved": 1,
        "netLikes": 2,
        "views": 1,
        "uniqueViewers": 1,
        "watchTimeMs": 36_000.0,
        "averageWatchMs": 36_000.0,
        "likeToViewRatio": 2.0,
        # u1, u2 and u3 reacted; one viewer.
        "engagementRate": 3.0,
    }
    assert {r["reaction"]: r["net"] for r in a["reactions"]} == {"LOVE": 1, "WOW": 1}
    assert a["byPlatform"] == [
        {"key": "IOS", "views": 1, "watchTimeMs": 31_000.0, "likesAdded": 0},
        {"key": "unknown", "views": 0, "watchTimeMs": 5_000.0, "likesAdded": 3},
    ]
    assert a["bySource"][0] == {"key": "FEED", "views": 1, "watchTimeMs": 31_000.0, "likesAdded": 0}
    assert a["byRegion"] == [
        {"key": "unknown", "views": 1, "watchTimeMs": 36_000.0, "likesAdded": 3}
    ]
    completion = a["completion"]
    assert completion["histogram"] == [0, 1, 0, 0, 0, 1, 0, 0, 0, 0]  # 0.1 and 0.5
    assert completion["average"] == pytest.approx((0.5 + 6_000 / 60_000) / 2, abs=1e-6)
    assert a["timeToFirstLikeMs"] is not None and a["timeToFirstLikeMs"] >= 0
    assert a["lifetime"] == {"likes": 2, "views": 1}
    # Minute buckets over a 2-hour window, zero-filled, oldest first; they add up.
    series = a["series"]
    assert 120 <= len(series) <= 121
    assert [p["start"] for p in series] == sorted(p["start"] for p in series)
    assert sum(p["views"] for p in series) == 1
    assert sum(p["likesAdded"] for p in series) == 3
    assert sum(p["watchTimeMs"] for p in series) == 36_000.0

    body = await gql(http, CREATOR, {"c": creator, "r": window(), "top": 5}, bearer=token(creator))
    c = data_of(body)["creatorAnalytics"]
    assert c["totals"] == {"likesAdded": 3, "views": 1, "watchTimeMs": 36_000.0}
    assert c["topByViews"] == [{"contentId": cid, "views": 1, "likesAdded": 3}]
    assert c["topByLikes"] == [{"contentId": cid, "views": 1, "likesAdded": 3}]


async def test_who_may_ask(http: httpx.AsyncClient) -> None:
    creator = uid("creator")
    cid = await register_video(http, creator)
    assert data_of(await dashboard(http, cid, token(creator)))["contentAnalytics"]
    assert data_of(await dashboard(http, cid, token("ops", ["admin"])))["contentAnalytics"]
    assert data_of(await dashboard(http, cid, service_token()))["contentAnalytics"]
    other = await dashboard(http, cid, token(uid("another-creator")))
    assert single_error_code(other) == "FORBIDDEN"
    assert other.get("data") is None
    anonymous = await gql(http, DASHBOARD, {"id": cid, "r": window(), "g": "HOUR"})
    assert single_error_code(anonymous) == "UNAUTHENTICATED"
    # Another creator's numbers, asked as a creator: refused the same way.
    mine = await register_video(http, "creator-b")
    theirs = await gql(http, CREATOR, {"c": creator, "r": window()}, bearer=token("creator-b"))
    assert single_error_code(theirs) == "FORBIDDEN"
    assert data_of(await dashboard(http, mine, token("creator-b")))


@pytest.mark.parametrize(
    ("granularity", "time_range", "says"),
    [
        ("MINUTE", window(49, 0), "48 hours"),
        ("HOUR", window(24 * 401, 0), "400 days"),
        ("DAY", window(24 * 1900, 0), "1826 days"),
        ("HOUR", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "before"),
        ("HOUR", {"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"}, "time zone"),
    ],
)
async def test_ranges_out_of_bounds_are_bad_user_input(
    http: httpx.AsyncClient, granularity: str, time_range: dict[str, str], says: str
) -> None:
    creator = uid("creator")
    cid = await register_video(http, creator)
    body = await gql(
        http, DASHBOARD, {"id": cid, "r": time_range, "g": granularity}, bearer=token(creator)
    )
    assert single_error_code(body) == "BAD_USER_INPUT"
    assert says in body["errors"][0]["message"]


async def test_a_range_in_another_offset_is_the_same_instant(http: httpx.AsyncClient) -> None:
    creator = uid("creator")
    cid = await register_video(http, creator)
    at = {"from": "2026-06-01T12:00:00+02:00", "to": "2026-06-01T14:00:00+02:00"}
    body = await gql(http, DASHBOARD, {"id": cid, "r": at, "g": "HOUR"}, bearer=token(creator))
    a = data_of(body)["contentAnalytics"]
    assert a["from"].startswith("2026-06-01T10:00:00") and a["to"].startswith("2026-06-01T12:00")
    assert [p["views"] for p in a["series"]] == [0, 0]


@pytest.fixture(scope="module")
def region_server(redis_proc: Any, tmp_path_factory: Any) -> Iterator[Server]:
    with serving(
        redis_proc,
        tmp_path_factory,
        CLIENT_REGION_HEADER="X-Viewer-Country",
        TRUSTED_PROXIES="127.0.0.1/32",
    ) as server:
        yield server


async def test_the_region_comes_from_a_trusted_proxy(region_server: Server) -> None:
    async with httpx.AsyncClient(base_url=region_server.base_url, timeout=15) as http:
        creator = uid("creator")
        cid = await register_video(http, creator)
        event = {"contentId": cid, "watchedMs": 31_000, "final": True}
        await record(
            http,
            [{**event, "sessionId": f"se-{cid}"}],
            bearer=token("v-se"),
            **{"X-Viewer-Country": "se"},
        )
        await record(
            http,
            [{**event, "sessionId": f"bad-{cid}"}],
            bearer=token("v-bad"),
            **{"X-Viewer-Country": "Sweden"},
        )

        def two_views(body: dict[str, Any]) -> bool:
            a = (body.get("data") or {}).get("contentAnalytics")
            return a is not None and a["totals"]["views"] == 2

        body = await eventually(
            lambda: dashboard(http, cid, token(creator)), two_views, within=15, what="views"
        )
        regions = {r["key"]: r["views"] for r in data_of(body)["contentAnalytics"]["byRegion"]}
        assert regions == {"SE": 1, "unknown": 1}


async def test_the_region_header_is_believed_from_the_proxy_not_the_forwarded_client(
    region_server: Server,
) -> None:
    """Behind a proxy that also sends X-Forwarded-For: the client's address is the
    forwarded one (abuse limits), and the region header is still believed, because
    the peer that sent it is the trusted proxy."""
    async with httpx.AsyncClient(base_url=region_server.base_url, timeout=15) as http:
        creator = uid("creator")
        cid = await register_video(http, creator)
        event = {"contentId": cid, "watchedMs": 31_000, "final": True, "sessionId": f"s-{cid}"}
        await record(
            http,
            [event],
            bearer=token("v-fwd"),
            **{"X-Viewer-Country": "NO", "X-Forwarded-For": "203.0.113.9"},
        )

        def one_view(body: dict[str, Any]) -> bool:
            a = (body.get("data") or {}).get("contentAnalytics")
            return a is not None and a["totals"]["views"] == 1

        body = await eventually(
            lambda: dashboard(http, cid, token(creator)), one_view, within=15, what="views"
        )
        regions = {r["key"]: r["views"] for r in data_of(body)["contentAnalytics"]["byRegion"]}
        assert regions == {"NO": 1}
