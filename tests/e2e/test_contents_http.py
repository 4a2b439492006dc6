"""registerContent over HTTP: roles, idempotence, conflicts."""

from __future__ import annotations

import httpx

from tests.e2e.helpers import (
    REGISTER,
    SECRET,
    data_of,
    gql,
    like,
    service_token,
    single_error_code,
    token,
    uid,
)


def _input(cid: str, creator: str = "creator-1", kind: str = "VIDEO", **extra: object) -> dict:
    return {"input": {"contentId": cid, "creatorId": creator, "kind": kind, **extra}}


async def test_service_role_registers_content(http: httpx.AsyncClient) -> None:
    cid = uid()
    body = await gql(http, REGISTER, _input(cid, durationMs=61_000), bearer=service_token())
    content = data_of(body)["registerContent"]
    assert content["contentId"] == cid
    assert content["creatorId"] == "creator-1"
    assert content["kind"] == "VIDEO"
    assert content["durationMs"] == 61_000
    assert content["createdAt"]


async def test_admin_role_registers_content(http: httpx.AsyncClient) -> None:
    body = await gql(http, REGISTER, _input(uid()), bearer=token("ops", ["admin"]))
    assert data_of(body)["registerContent"]


async def test_registering_again_with_the_same_input_is_ok(http: httpx.AsyncClient) -> None:
    cid = uid()
    first = data_of(await gql(http, REGISTER, _input(cid), bearer=service_token()))
    again = data_of(await gql(http, REGISTER, _input(cid), bearer=service_token()))
    assert again == first  # the original registration, createdAt included


async def test_other_creator_is_a_conflict(http: httpx.AsyncClient) -> None:
    cid = uid()
    data_of(await gql(http, REGISTER, _input(cid), bearer=service_token()))
    body = await gql(http, REGISTER, _input(cid, creator="someone-else"), bearer=service_token())
    assert single_error_code(body) == "CONFLICT"


async def test_other_kind_is_a_conflict(http: httpx.AsyncClient) -> None:
    cid = uid()
    data_of(await gql(http, REGISTER, _input(cid), bearer=service_token()))
    body = await gql(http, REGISTER, _input(cid, kind="POST"), bearer=service_token())
    assert single_error_code(body) == "CONFLICT"


async def test_plain_user_is_forbidden(http: httpx.AsyncClient) -> None:
    cid = uid()
    body = await gql(http, REGISTER, _input(cid), bearer=token("just-a-user"))
    assert single_error_code(body) == "FORBIDDEN"
    # and nothing was registered: a like on it is CONTENT_NOT_FOUND
    assert single_error_code(await like(http, "u1", cid)) == "CONTENT_NOT_FOUND"


async def test_no_token_is_unauthenticated(http: httpx.AsyncClient) -> None:
    body = await gql(http, REGISTER, _input(uid()))
    assert single_error_code(body) == "UNAUTHENTICATED"


async def test_bad_tokens_are_unauthenticated(http: httpx.AsyncClient) -> None:
    for bad in (
        "garbage",
        token("svc", ["service"], ttl_s=-3600),
        token("svc", ["service"], secret=SECRET + "-other"),
    ):
        body = await gql(http, REGISTER, _input(uid()), bearer=bad)
        assert single_error_code(body) == "UNAUTHENTICATED", bad


async def test_invalid_registration_input_is_bad_user_input(http: httpx.AsyncClient) -> None:
    for variables in (
        _input(""),
        _input("x" * 129),
        _input(uid(), creator=""),
        _input(uid(), durationMs=0),
        _input(uid(), durationMs=-5),
    ):
        body = await gql(http, REGISTER, variables, bearer=service_token())
        assert single_error_code(body) == "BAD_USER_INPUT", variables


REGISTER_MANY = """mutation($in: [RegisterContentInput!]!) {
  registerContents(inputs: $in) { contentId kind durationMs } }"""


async def test_a_catalog_batch_over_http(http: httpx.AsyncClient) -> None:
    ids = [uid() for _ in range(500)]
    batch = [{"contentId": c, "creatorId": "cr", "kind": "SHORT", "durationMs": 9_000} for c in ids]
    body = await gql(http, REGISTER_MANY, {"in": batch}, bearer=service_token())
    assert [c["contentId"] for c in data_of(body)["registerContents"]] == ids
    # Engagement works at once on any of them, and a repeat is harmless.
    assert "errors" not in await like(http, "u-catalog", ids[499])
    again = await gql(http, REGISTER_MANY, {"in": batch[:3]}, bearer=service_token())
    assert [c["contentId"] for c in data_of(again)["registerContents"]] == ids[:3]
    too_many = await gql(http, REGISTER_MANY, {"in": batch + batch[:1]}, bearer=service_token())
    assert single_error_code(too_many) == "BAD_USER_INPUT"
    anonymous = await gql(http, REGISTER_MANY, {"in": batch[:1]})
    assert single_error_code(anonymous) == "UNAUTHENTICATED"
