"""Read queries over HTTP: engagementSummaries and reactors."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest
import redis.asyncio as aioredis

from tests.e2e.helpers import (
    SUMMARIES,
    data_of,
    gql,
    like,
    register,
    single_error_code,
    token,
    uid,
)

REACTORS = """
query Reactors($id: ID!, $first: Int, $after: String, $reaction: ReactionType) {
  reactors(contentId: $id, first: $first, after: $after, reaction: $reaction) {
    edges { cursor node { userId reaction reactedAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def summaries(http: httpx.AsyncClient, ids: list[str], viewer: str | None = None) -> dict:
    return await gql(http, SUMMARIES, {"ids": ids}, bearer=token(viewer) if viewer else None)


async def reactors(http: httpx.AsyncClient, cid: str, **args: object) -> dict:
    return await gql(http, REACTORS, {"id": cid, **args})


# --- engagementSummaries ----------------------------------------------------------


async def test_summaries_keep_order_and_duplicates(http: httpx.AsyncClient) -> None:
    a, b, c = await register(http), await register(http), await register(http)
    data_of(await like(http, "fan", b, "WOW"))
    ids = [c, a, b, a, c]
    got = data_of(await summaries(http, ids, viewer="fan"))["engagementSummaries"]
    assert [s["contentId"] for s in got] == ids
    by_id = {s["contentId"]: s for s in got}
    assert by_id[b]["viewerReaction"] == "WOW"
    assert by_id[a]["viewerReaction"] is None
    assert got[1] == got[3]  # the duplicate is the same summary


async def test_summaries_viewer_reaction_is_null_when_anonymous(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    data_of(await like(http, "fan", cid, "SAD"))
    mine = data_of(await summaries(http, [cid], viewer="fan"))["engagementSummaries"]
    assert mine[0]["viewerReaction"] == "SAD"
    anon = data_of(await summaries(http, [cid]))["engagementSummaries"]
    assert anon[0]["viewerReaction"] is None
    other = data_of(await summaries(http, [cid], viewer="stranger"))["engagementSummaries"]
    assert other[0]["viewerReaction"] is None


async def test_summaries_of_unknown_ids_are_zero(
    http: httpx.AsyncClient, redis_probe: aioredis.Redis
) -> None:
    ghost = uid("ghost")
    got = data_of(await summaries(http, [ghost]))["engagementSummaries"]
    assert got == [{"contentId": ghost, "likes": 0, "reactions": [], "viewerReaction": None}]
    assert [k async for k in redis_probe.scan_iter(match=f"*{ghost}*")] == []


async def test_summaries_limit_is_100(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    ok = data_of(await summaries(http, [cid] * 100))["engagementSummaries"]
    assert len(ok) == 100


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda m: [f"{m}-{i}" for i in range(101)], id="101-ids"),
        pytest.param(lambda m: [m + "x" * (129 - len(m))], id="129-chars"),
        pytest.param(lambda m: [m, ""], id="empty-id"),
        pytest.param(lambda m: [m, "   "], id="blank-id"),
    ],
)
async def test_bad_summary_requests_are_bad_user_input(
    http: httpx.AsyncClient, redis_probe: aioredis.Redis, bad
) -> None:
    marker = uid("nw")
    body = await summaries(http, bad(marker), viewer="reader")
    assert single_error_code(body) == "BAD_USER_INPUT"
    assert body["data"] is None
    assert [k async for k in redis_probe.scan_iter(match=f"*{marker}*")] == []


# --- reactors -----------------------------------------------------------------------


async def _likers(http: httpx.AsyncClient, cid: str, n: int) -> list[str]:
    users = []
    for i in range(n):
        user = f"reactor-{i:02d}"
        data_of(await like(http, user, cid, "LOVE" if i % 3 == 0 else "LIKE"))
        users.append(user)
    return users


async def test_reactors_newest_first_with_paging(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    users = await _likers(http, cid, 7)
    newest_first = list(reversed(users))

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        args: dict = {"first": 3}
        if after is not None:
            args["after"] = after
        conn = data_of(await reactors(http, cid, **args))["reactors"]
        pages += 1
        edges = conn["edges"]
        assert len(edges) <= 3
        seen += [e["node"]["userId"] for e in edges]
        assert conn["pageInfo"]["endCursor"] == (edges[-1]["cursor"] if edges else None)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
        assert pages < 10
    assert pages == 3
    assert seen == newest_first

    stamps = [
        e["node"]["reactedAt"]
        for e in data_of(await reactors(http, cid, first=100))["reactors"]["edges"]
    ]
    assert stamps == sorted(stamps, reverse=True)


async def test_reactors_default_page_and_empty(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    conn = data_of(await reactors(http, cid))["reactors"]
    assert conn == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


async def test_reactors_reaction_filter(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    users = await _likers(http, cid, 7)
    loves = [u for i, u in enumerate(users) if i % 3 == 0]
    conn = data_of(await reactors(http, cid, reaction="LOVE", first=100))["reactors"]
    assert [e["node"]["userId"] for e in conn["edges"]] == list(reversed(loves))
    assert all(e["node"]["reaction"] == "LOVE" for e in conn["edges"])
    assert conn["pageInfo"]["hasNextPage"] is False


async def test_reactors_leave_out_unliked_and_follow_switches(http: httpx.AsyncClient) -> None:
    cid = await register(http)
    users = await _likers(http, cid, 3)
    data_of(
        await gql(
            http,
            "mutation($i: UnlikeInput!) { unlike(input: $i) { changed } }",
            {"i": {"contentId": cid}},
            bearer=token(users[1]),
        )
    )
    data_of(await like(http, users[0], cid, "ANGRY"))  # switching makes it newest
    nodes = [e["node"] for e in data_of(await reactors(http, cid, first=10))["reactors"]["edges"]]
    assert [(n["userId"], n["reaction"]) for n in nodes] == [
        (users[0], "ANGRY"),
        (users[2], "LIKE"),
    ]


async def test_reactors_paging_over_concurrent_likes_has_no_gaps(
    http: httpx.AsyncClient,
) -> None:
    # Likes landing in the same millisecond share a timestamp; the cursor must
    # still neither skip nor repeat anyone.
    cid = await register(http)
    users = [f"burst-{i:02d}" for i in range(30)]
    for body in await asyncio.gather(*(like(http, u, cid) for u in users)):
        data_of(body)
    seen: list[str] = []
    after = None
    for _ in range(20):
        args: dict = {"first": 4}
        if after:
            args["after"] = after
        conn = data_of(await reactors(http, cid, **args))["reactors"]
        seen += [e["node"]["userId"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(users)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("first", [0, -1, 101])
async def test_reactors_first_out_of_range_is_bad_user_input(
    http: httpx.AsyncClient, first: int
) -> None:
    cid = await register(http)
    assert single_error_code(await reactors(http, cid, first=first)) == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "cursor", ["garbage!!", "%%%", "abc", base64.urlsafe_b64encode(b"nope:u").decode()]
)
async def test_reactors_garbage_cursor_is_bad_user_input(
    http: httpx.AsyncClient, cursor: str
) -> None:
    cid = await register(http)
    assert single_error_code(await reactors(http, cid, after=cursor)) == "BAD_USER_INPUT"


@pytest.mark.parametrize("raw", [b"99999999999999999999:u", b"1" + b"0" * 400 + b":u"])
async def test_reactors_out_of_range_cursor_is_bad_user_input(
    http: httpx.AsyncClient, raw: bytes
) -> None:
    cid = await register(http)
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert single_error_code(await reactors(http, cid, after=cursor)) == "BAD_USER_INPUT"


async def test_reactors_bad_content_id_is_bad_user_input(http: httpx.AsyncClient) -> None:
    for cid in ("", "x" * 129):
        assert single_error_code(await reactors(http, cid)) == "BAD_USER_INPUT"
