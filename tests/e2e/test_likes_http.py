"""like / unlike over HTTP against the real server and a real Redis."""

from __future__ import annotations

import asyncio

import httpx
import redis.asyncio as aioredis

from tests.e2e.helpers import (
    LIKE,
    SECRET,
    UNLIKE,
    Server,
    counts,
    data_of,
    eventually,
    gql,
    like,
    register,
    single_error_code,
    summary,
    token,
    uid,
    wait_drained,
)


async def unlike(
    http: httpx.AsyncClient, user: str, cid: str, request_id: str | None = None
) -> dict:
    inp: dict = {"contentId": cid}
    if request_id is not None:
        inp["requestId"] = request_id
    return await gql(http, UNLIKE, {"input": inp}, bearer=token(user))


async def settled_summary(
    http: httpx.AsyncClient,
    redis: aioredis.Redis,
    server: Server,
    cid: str,
    likes: int,
) -> dict:
    """The summary once the aggregator has applied everything (bounded wait)."""
    await wait_drained(redis, server)
    return await eventually(
        lambda: summary(http, cid),
        lambda s: s["likes"] == likes,
        what=f"engagementSummary({cid}).likes == {likes}",
    )


# --- the reaction lifecycle -------------------------------------------------------


async def test_like_switch_unlike_lifecycle(http: httpx.AsyncClient) -> None:
    cid = await register(http)

    p = data_of(await like(http, "alice", cid))["like"]
    assert p["contentId"] == cid
    assert p["changed"] is True
    assert p["viewerReaction"] == "LIKE"
    # read-your-writes: the payload counts this like even before the aggregator ran
    assert p["summary"]["likes"] == 1
    assert counts(p["summary"]) == {"LIKE": 1}
    assert p["summary"]["viewerReaction"] == "LIKE"

    p = data_of(await like(http, "alice", cid, "LIKE"))["like"]
    assert p["changed"] is False
    assert p["viewerReaction"] == "LIKE"
    assert p["summary"]["likes"] == 1

    p = data_of(await like(http, "alice", cid, "LOVE"))["like"]
    assert p["changed"] is True
    assert p["viewerReaction"] == "LOVE"
    assert p["summary"]["likes"] == 1
    assert counts(p["summary"]) == {"LOVE": 1}  # LIKE is gone, not listed with 0

    p = data_of(await unlike(http, "alice", cid))["unlike"]
    assert p["changed"] is True
    assert p["viewerReaction"] is None
    assert p["summary"]["likes"] == 0
    assert p["summary"]["reactions"] == []
    assert p["summary"]["viewerReaction"] is None

    p = data_of(await unlike(http, "alice", cid))["unlike"]
    assert p["changed"] is False
    assert p["viewerReaction"] is None
    assert p["summary"]["likes"] == 0


async def test_counters_converge_after_the_pipeline(
    http: httpx.AsyncClient, redis_probe: aioredis.Redis, likeview_server: Server
) -> None:
    cid = await register(http)
    data_of(await like(http, "u1", cid, "LIKE"))
    data_of(await like(http, "u2", cid, "LOVE"))
    data_of(await like(http, "u3", cid, "WOW"))
    data_of(await like(http, "u3", cid, "LOVE"))  # a switch
    data_of(await unlike(http, "u1", cid))
    s = await settled_summary(http, redis_probe, likeview_server, cid, 2)
    assert counts(s) == {"LOVE": 2}
    mine = await summary(http, cid, viewer="u2")
    assert mine["viewerReaction"] == "LOVE"
    assert (await summary(http, cid, viewer="u1"))["viewerReaction"] is None


async def test_read_your_writes_on_someone_elses_counts(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    data_of(await like(http, "first", cid))
    # The second liker's payload counts their own like, whatever the aggregator did.
    p = data_of(await like(http, "second", cid))["like"]
    assert p["summary"]["likes"] >= 1
    assert p["viewerReaction"] == "LIKE"


async def test_double_tap_by_one_user_counts_once(
    http: httpx.AsyncClient, redis_probe: aioredis.Redis, likeview_server: Server
) -> None:
    cid = await register(http)
    results = await asyncio.gather(*(like(http, "tapper", cid) for _ in range(5)))
    payloads = [data_of(b)["like"] for b in results]
    assert sum(p["changed"] for p in payloads) == 1
    assert all(p["viewerReaction"] == "LIKE" for p in payloads)
    await settled_summary(http, redis_probe, likeview_server, cid, 1)


# --- idempotency keys -------------------------------------------------------------


async def test_retry_with_same_request_id_replays_and_counts_once(
    http: httpx.AsyncClient, redis_probe: aioredis.Redis, likeview_server: Server
) -> None:
    cid = await register(http)
    rid = uid("req")
    first = data_of(await like(http, "retrier", cid, "LIKE", rid))["like"]
    again = data_of(await like(http, "retrier", cid, "LIKE", rid))["like"]
    assert first["changed"] is True
    assert again == first  # the stored result, changed: true included
    s = await settled_summary(http, redis_probe, likeview_server, cid, 1)
    assert counts(s) == {"LIKE": 1}
    # still exactly one after a third retry, once everything has drained
    data_of(await like(http, "retrier", cid, "LIKE", rid))
    await wait_drained(redis_probe, likeview_server)
    assert (await summary(http, cid))["likes"] == 1


async def test_same_request_id_with_different_input_is_rejected(
    http: httpx.AsyncClient,
) -> None:
    cid = await register(http)
    other = await register(http)
    rid = uid("req")
    data_of(await like(http, "reuser", cid, "LIKE", rid))
    assert single_error_code(await like(http, "reuser", cid, "LOVE", rid)) == (
        "IDEMPOTENCY_KEY_REUSED"
    )
    assert single_error_code(await like(http, "reuser", other, "LIKE", rid)) == (
        "IDEMPOTENCY_KEY_REUSED"
    )
    assert single_error_code(await unlike(http, "reuser", cid, rid)) == "IDEMPOTENCY_KEY_REUSED"
    # nothing changed by the rejected calls
    assert (await summary(http, cid, viewer="reuser"))["viewerReaction"] == "LIKE"
    assert (await summary(http, other, viewer="reuser"))["viewerReaction"] is None


async def test_request_ids_are_per_user(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    rid = uid("shared")
    a = data_of(await like(http, "user-a", cid, "LIKE", rid))["like"]
    b = data_of(await like(http, "user-b", cid, "LOVE", rid))["like"]
    assert a["changed"] is True and b["changed"] is True
    assert b["viewerReaction"] == "LOVE"


async def test_concurrent_duplicates_with_one_request_id_count_once(
    http: httpx.AsyncClient, redis_probe: aioredis.Redis, likeview_server: Server
) -> None:
    cid = await register(http)
    rid = uid("req")
    one, two = await asyncio.gather(
        like(http, "racer", cid, "LOVE", rid), like(http, "racer", cid, "LOVE", rid)
    )
    p1, p2 = data_of(one)["like"], data_of(two)["like"]
    assert p1 == p2
    assert p1["changed"] is True
    assert p1["viewerReaction"] == "LOVE"
    s = await settled_summary(http, redis_probe, likeview_server, cid, 1)
    assert counts(s) == {"LOVE": 1}


async def test_bad_request_ids_are_bad_user_input(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    for rid in ("", "   ", "r" * 129):
        assert single_error_code(await like(http, "rid-user", cid, None, rid)) == (
            "BAD_USER_INPUT"
        ), rid
    assert (await summary(http, cid, viewer="rid-user"))["viewerReaction"] is None


# --- unknown content, bad ids, authentication ---------------------------------------


async def test_like_on_unknown_content_is_content_not_found(
    http: httpx.AsyncClient, redis_probe: aioredis.Redis, likeview_server: Server
) -> None:
    cid = uid("ghost")
    assert single_error_code(await like(http, "u1", cid)) == "CONTENT_NOT_FOUND"
    assert single_error_code(await unlike(http, "u1", cid)) == "CONTENT_NOT_FOUND"
    keys = [k async for k in redis_probe.scan_iter(match=f"*{cid}*")]
    assert keys == []


async def test_bad_content_ids_are_bad_user_input(
    http: httpx.AsyncClient, redis_probe: aioredis.Redis
) -> None:
    marker = uid("long")
    for cid in ("", "  ", marker + "x" * (129 - len(marker))):
        assert single_error_code(await like(http, "u1", cid)) == "BAD_USER_INPUT", cid
    assert [k async for k in redis_probe.scan_iter(match=f"*{marker}*")] == []


async def test_mutations_need_a_token(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    body = await gql(http, LIKE, {"input": {"contentId": cid}})
    assert single_error_code(body) == "UNAUTHENTICATED"
    body = await gql(http, UNLIKE, {"input": {"contentId": cid}})
    assert single_error_code(body) == "UNAUTHENTICATED"
    assert (await summary(http, cid))["likes"] == 0


async def test_bad_tokens_are_unauthenticated(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    bad_tokens = {
        "garbage": "garbage",
        "expired": token("late", ttl_s=-3600),
        "wrong secret": token("forger", secret=SECRET + "-not-it"),
        "alg none": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4Iiwicm9sZXMiOltdfQ.",
    }
    for name, bad in bad_tokens.items():
        body = await gql(http, LIKE, {"input": {"contentId": cid}}, bearer=bad)
        assert single_error_code(body) == "UNAUTHENTICATED", name
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Token abc"):
        body = await gql(
            http, LIKE, {"input": {"contentId": cid}}, headers={"authorization": header}
        )
        assert single_error_code(body) == "UNAUTHENTICATED", header
    assert (await summary(http, cid))["likes"] == 0
