"""Drill 3: MongoDB unavailable.

No MongoDB server can be had here, so the app runs in process over mongomock
wrapped by tests/faults.py's FaultyDatabase, whose collections raise pymongo's
ServerSelectionTimeoutError on demand (what motor raises when no server answers),
against a real Redis.

Expected: writes fail fast with UNAVAILABLE (``retryAfterMs``, no trace), GET
/readyz answers 503 naming mongodb while /healthz stays 200, and nothing reaches
Redis that MongoDB does not hold: no event in the log, no idempotency key left
claimed, counters equal to MongoDB's recount. After healing, a retry with the
same requestId applies once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from domain.reads import counter_readings, recount
from main import Settings, create_app
from storage.embedded_mongo import open_embedded_client
from tests.drills.procs import poll
from tests.e2e.helpers import (
    SECRET,
    SUMMARY,
    data_of,
    gql,
    like,
    register,
    service_token,
    single_error_code,
    token,
    uid,
)
from tests.faults import FaultyDatabase, MongoFaults

RECORD_MANY = """mutation($v: [ViewInput!]!) { recordViews(inputs: $v) {
  sessionId decision { counted } } }"""
REGISTER = """mutation($i: RegisterContentInput!) { registerContent(input: $i) { contentId } }"""


@pytest.fixture
async def app(redis_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, FaultyDatabase, Any]]:
    faults = MongoFaults()
    db = FaultyDatabase(open_embedded_client()[f"drill3_{uuid.uuid4().hex[:8]}"], faults)
    settings = Settings(
        redis_url=redis_url,
        jwt_secret=SECRET,
        key_prefix=f"drill3{uuid.uuid4().hex[:8]}",
        outbox_grace_s=1.0,
    )
    application = create_app(settings, db=db)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://drill") as client:
            yield client, db, application.state.runtime
    faults.heal()


def unavailable(body: dict[str, Any]) -> None:
    assert single_error_code(body) == "UNAVAILABLE", body
    (error,) = body["errors"]
    assert error["extensions"]["retryAfterMs"] > 0
    assert "mongodb" in error["message"]


async def log_mentions(redis: aioredis.Redis, prefix: str, needle: str) -> bool:
    async for name in redis.scan_iter(match=f"{prefix}:*events*"):
        if await redis.type(name) != "stream":
            continue
        for _, fields in await redis.xrange(name) or []:
            if any(needle in str(v) for v in (fields or {}).values()):
                return True
    return False


async def test_writes_fail_fast_and_nothing_uncounted_reaches_redis(app, redis_url) -> None:
    http, db, runtime = app
    faults = db.faults
    cid = await register(http, kind="SHORT")
    assert data_of(await like(http, "drill3-a", cid, request_id="ra"))["like"]["changed"]

    # Everything down: every write refuses at once, typed, without a trace.
    faults.fail()
    unavailable(await like(http, "drill3-b", cid, request_id="rb"))
    views = [{"contentId": cid, "sessionId": uid("s"), "deviceId": "dev-b", "watchedMs": 5_000}]
    unavailable(await gql(http, RECORD_MANY, {"v": views}))
    reg = {"contentId": uid(), "creatorId": "creator-1", "kind": "VIDEO"}
    unavailable(await gql(http, REGISTER, {"i": reg}, bearer=service_token()))
    ready = await http.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["mongodb"].startswith("error") and ready.json()["redis"] == "ok"
    assert (await http.get("/healthz")).status_code == 200

    # Only the reactions down: the content check passes, the limits and the
    # idempotency claim happen in Redis, the reaction write fails; the claim is
    # released so the retry is not told IDEMPOTENCY_KEY_IN_USE.
    faults.fail({"reactions"})
    unavailable(await like(http, "drill3-c", cid, request_id="rc"))
    assert faults.refused >= 5

    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        prefix = runtime.services.keys
        for user, rid in (("drill3-b", "rb"), ("drill3-c", "rc")):
            assert not await redis.exists(prefix.idempotency(user, rid))
            assert not await log_mentions(redis, runtime.settings.key_prefix, user)
    finally:
        await redis.aclose()

    faults.heal()
    assert (await http.get("/readyz")).status_code == 200
    for user, rid in (("drill3-b", "rb"), ("drill3-c", "rc")):
        body = data_of(await like(http, user, cid, request_id=rid))["like"]
        assert body["changed"] and body["viewerReaction"] == "LIKE", body
    again = data_of(await like(http, "drill3-c", cid, request_id="rc"))["like"]
    assert again["changed"], again  # the replay of the first answer

    async def likes() -> int:
        return int(data_of(await gql(http, SUMMARY, {"id": cid}))["engagementSummary"]["likes"])

    await poll(likes, lambda n: n == 3, within=30, what="3 likes counted")
    deps = runtime.deps
    truth = (await recount(deps, [cid]))[cid]
    counted = (await counter_readings(deps, [cid]))[cid]
    assert counted.counters.get("likes", 0) == truth.counters.get("likes", 0) == 3


async def test_reads_of_viewer_state_fail_typed_too(app) -> None:
    http, db, _ = app
    cid = await register(http, kind="VIDEO")
    db.faults.fail({"reactions"})
    body = await gql(http, SUMMARY, {"id": cid}, bearer=token("drill3-reader"))
    unavailable(body)
    db.faults.heal()
    assert data_of(await gql(http, SUMMARY, {"id": cid}))["engagementSummary"]["likes"] == 0
