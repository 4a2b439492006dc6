"""Views end to end: recordView(s), viewSession and live pushes, on the real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

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

RECORD = """mutation($i: ViewInput!) { recordView(input: $i) {
  contentId sessionId decision { counted rule reason } } }"""
RECORD_MANY = """mutation($v: [ViewInput!]!) { recordViews(inputs: $v) {
  sessionId decision { counted rule reason } } }"""
SESSION = """query($s: ID!) { viewSession(sessionId: $s) {
  sessionId contentId watchedMs positionMs events ended flags source platform
  decision { counted rule reason } } }"""
VIEWS = """query($id: ID!) { engagementSummary(contentId: $id) { views uniqueViewers } }"""
LIVE = """subscription($ids: [ID!]!) { engagementUpdated(contentIds: $ids) {
  contentId likes views uniqueViewers } }"""


async def record(http: httpx.AsyncClient, user: str | None, **inp: Any) -> dict[str, Any]:
    return await gql(http, RECORD, {"i": inp}, bearer=token(user) if user else None)


async def views_of(http: httpx.AsyncClient, cid: str) -> dict[str, Any]:
    return data_of(await gql(http, VIEWS, {"id": cid}))["engagementSummary"]


async def test_signed_in_view_is_decided_and_explained(http: httpx.AsyncClient) -> None:
    cid = await register(http, kind="VIDEO")
    sid = uid("s")
    body = await record(http, "viewer-1", contentId=cid, sessionId=sid, watchedMs=12_000)
    d = data_of(body)["recordView"]["decision"]
    assert d == {"counted": False, "rule": "VIDEO.default", "reason": "watched 12.0 s < 30 s"}
    body = await record(
        http,
        "viewer-1",
        contentId=cid,
        sessionId=sid,
        watchedMs=31_200,
        source="FEED",
        platform="IOS",
        eventId="e2",
    )
    d = data_of(body)["recordView"]["decision"]
    # The second event of a session may not exceed the wall time since the first.
    assert d["counted"] is False and "wall" in d["reason"], d
    own = data_of(await gql(http, SESSION, {"s": sid}, bearer=token("viewer-1")))["viewSession"]
    assert own["sessionId"] == sid and own["watchedMs"] == 12_000 and own["flags"]
    assert (
        data_of(await gql(http, SESSION, {"s": sid}, bearer=token("other")))["viewSession"] is None
    )
    assert single_error_code(await gql(http, SESSION, {"s": sid})) == "UNAUTHENTICATED"


async def test_first_event_is_credited_in_full(http: httpx.AsyncClient) -> None:
    cid = await register(http, kind="VIDEO")
    body = await record(
        http, "viewer-2", contentId=cid, sessionId=uid("s"), watchedMs=31_200, positionMs=31_200
    )
    assert data_of(body)["recordView"]["decision"] == {
        "counted": True,
        "rule": "VIDEO.default",
        "reason": "watched 31.2 s >= 30 s",
    }
    again = await record(http, "viewer-2", contentId=cid, sessionId=uid("s"), watchedMs=40_000)
    d = data_of(again)["recordView"]["decision"]
    assert d["counted"] is False and d["reason"].startswith("duplicate: already counted")
    s = await eventually(lambda: views_of(http, cid), lambda v: v["views"] == 1, what="views")
    assert s == {"views": 1, "uniqueViewers": 1}


async def test_anonymous_batch_counts_and_shows_in_summary(http: httpx.AsyncClient) -> None:
    cid = await register(http, kind="SHORT")
    batch = [
        {"contentId": cid, "sessionId": uid("s"), "deviceId": f"dev-{i}", "watchedMs": 2_500}
        for i in range(100)
    ]
    out = data_of(await gql(http, RECORD_MANY, {"v": batch}))["recordViews"]
    assert [o["sessionId"] for o in out] == [b["sessionId"] for b in batch]
    assert all(o["decision"]["counted"] and o["decision"]["rule"] == "SHORT.default" for o in out)
    s = await eventually(lambda: views_of(http, cid), lambda v: v["views"] == 100, what="views")
    assert abs(s["uniqueViewers"] - 100) <= 2  # HyperLogLog estimate


@pytest.mark.parametrize(
    ("inp", "code"),
    [
        ({"watchedMs": 1000}, "BAD_USER_INPUT"),  # anonymous without deviceId
        ({"deviceId": "d", "watchedMs": 1000, "visibleFraction": 1.5}, "BAD_USER_INPUT"),
        ({"deviceId": "d", "watchedMs": 1000, "sessionId": "x" * 129}, "BAD_USER_INPUT"),
        ({"deviceId": "d", "watchedMs": 1000, "contentId": "no-such-content"}, "CONTENT_NOT_FOUND"),
    ],
    ids=["no-device", "visible-fraction", "long-session-id", "unknown-content"],
)
async def test_bad_view_input_is_refused_whole(
    http: httpx.AsyncClient, inp: dict[str, Any], code: str
) -> None:
    cid = await register(http, kind="POST")
    base = {"contentId": cid, "sessionId": uid("s")}
    body = await gql(
        http, RECORD_MANY, {"v": [{**base, **inp}, {**base, "deviceId": "ok", "watchedMs": 5}]}
    )
    assert single_error_code(body) == code
    assert (await views_of(http, cid))["views"] == 0


async def test_more_than_500_events_is_bad_input(http: httpx.AsyncClient) -> None:
    cid = await register(http, kind="STORY")
    batch = [
        {"contentId": cid, "sessionId": f"s{i}", "deviceId": "d", "watchedMs": 0}
        for i in range(501)
    ]
    assert single_error_code(await gql(http, RECORD_MANY, {"v": batch})) == "BAD_USER_INPUT"


async def test_live_push_carries_views(http: httpx.AsyncClient, likeview_server: Server) -> None:
    cid = await register(http, kind="STORY")
    async with GqlWs.connect(likeview_server.ws_url) as ws:
        await ws.init_with_token(None)
        await ws.subscribe("v", LIVE, {"ids": [cid]})
        first = (await ws.next_payload("v"))["data"]["engagementUpdated"]
        assert first["views"] == 0
        await record(http, None, contentId=cid, sessionId=uid("s"), deviceId="d1", watchedMs=0)
        for _ in range(10):
            pushed = (await ws.next_payload("v"))["data"]["engagementUpdated"]
            if pushed["views"] == 1:
                break
        assert pushed == {"contentId": cid, "likes": 0, "views": 1, "uniqueViewers": 1}
