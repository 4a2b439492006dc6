"""Abuse limits on a real Redis: the GCRA script, the daily salt, and the like and
view use cases over a limit."""

from __future__ import annotations

import random

import httpx
import orjson
import pytest

from domain.errors import RateLimited
from domain.identity import Actor
from domain.likes import set_reaction
from domain.rate_limits import Action, Rate, RateLimiter, Scope, gcra
from domain.reactions import ReactionType as R
from domain.view_recording import record_views
from resolvers.auth import issue_token
from storage.keys import Keys
from storage.redis_rate_limits import SALT_TTL_S, RedisAddressSalts, RedisRateLimits
from tests.integration.conftest import RoundTrips
from transport.graphql_app import GraphQLApp

KEYS = Keys()
T = 1_800_000_000_000  # ms
ALICE = Actor("alice")


def like_of(who: str, rate: Rate | None = None):
    return ((Action.LIKE, Scope.USER, who), rate or Rate(60, 3))


async def test_allowed_until_the_burst_then_told_when_then_allowed_again(app_redis):
    store = RedisRateLimits(app_redis, KEYS)
    waits = [await store.acquire(T, [[like_of("u")]]) for _ in range(4)]
    assert waits == [[[0]], [[0]], [[0]], [[1000]]]
    assert await store.acquire(T + 999, [[like_of("u")]]) == [[1]]
    assert await store.acquire(T + 1000, [[like_of("u")]]) == [[0]]
    assert await store.acquire(T + 1000, [[like_of("u")]]) == [[1000]]
    # Idle for a burst's time: a whole burst again.
    later = T + 1000 + 4000
    assert await store.acquire(later, [[like_of("u")]] * 4) == [[0], [0], [0], [1000]]
    ttl = await app_redis.pttl(KEYS.rate_limit("like", "user", "u"))
    assert 0 < ttl <= 3000


async def test_scopes_are_independent_and_a_refused_request_uses_nothing(app_redis):
    store = RedisRateLimits(app_redis, KEYS)
    user = ((Action.LIKE, Scope.USER, "u"), Rate(60, 1))
    device = ((Action.LIKE, Scope.DEVICE, "d"), Rate(60, 2))
    addr = ((Action.LIKE, Scope.ADDRESS, "a"), Rate(60, 10))
    out = await store.acquire(T, [[user, device, addr], [user, device, addr]])
    assert out == [[0, 0, 0], [1000, 0, 0]]
    # The refused second request took nothing from the device or the address.
    other_user = ((Action.LIKE, Scope.USER, "v"), Rate(60, 1))
    assert await store.acquire(T, [[other_user, device, addr]]) == [[0, 0, 0]]
    assert await store.acquire(T, [[device]]) == [[1000]]
    # The same subject under another action or scope is another limit.
    assert await store.acquire(T, [[((Action.UNLIKE, Scope.USER, "u"), Rate(60, 1))]]) == [[0]]
    assert await store.acquire(T, [[((Action.LIKE, Scope.DEVICE, "u"), Rate(60, 1))]]) == [[0]]


async def test_the_script_follows_the_reference_arithmetic(app_redis):
    store = RedisRateLimits(app_redis, KEYS)
    rng = random.Random(13)
    rate = Rate(7, 4)  # a fractional interval: 8571.43 ms
    tat: float | None = None
    now = T
    for _ in range(300):
        now += rng.choice([0, 0, 1, 500, 3000, 8571, 20_000])
        expected = gcra(tat, now, rate)
        (got,) = await store.acquire(now, [[like_of("ref", rate)]])
        assert got == [expected.wait_ms]
        if expected.allowed:
            tat = expected.tat


async def test_every_scope_of_a_batch_is_one_round_trip(app_redis, monkeypatch):
    store = RedisRateLimits(app_redis, KEYS)
    await store.load_scripts()
    limiter = RateLimiter(store)
    batch = [
        [(Action.VIEW, Scope.USER, "u"), (Action.VIEW, Scope.DEVICE, f"d{i}")] for i in range(100)
    ]
    trips = RoundTrips(monkeypatch)
    from datetime import UTC, datetime

    verdicts = await limiter.check(datetime(2027, 1, 1, tzinfo=UTC), batch)
    assert trips.count == 1
    assert all(v.allowed for v in verdicts)


async def test_the_days_salt_is_made_once_and_shared(app_redis):
    a, b = RedisAddressSalts(app_redis, KEYS), RedisAddressSalts(app_redis, KEYS)
    salt = await a.salt_for("20260501")
    assert len(salt) == 16
    assert await b.salt_for("20260501") == salt
    assert await a.salt_for("20260502") != salt
    ttl = await app_redis.ttl(KEYS.address_salt("20260501"))
    assert SALT_TTL_S - 5 < ttl <= SALT_TTL_S


# --------------------------------------------------------------------------- use cases


def tight(deps, app_redis, **rates: Rate) -> RateLimiter:
    table = {(Action.LIKE, Scope.USER): Rate(60, 2), (Action.VIEW, Scope.DEVICE): Rate(60, 1)}
    for name, rate in rates.items():
        action, scope = name.split("_")
        table[(Action(action), Scope(scope))] = rate
    return RateLimiter(RedisRateLimits(app_redis, KEYS), table)


async def stream_events(app_redis) -> list[dict]:
    found = []
    for stream in KEYS.streams():
        for _, fields in await app_redis.xrange(stream):
            found += orjson.loads(fields.get("b", "[]")) + orjson.loads(fields.get("r", "[]"))
    return found


async def test_a_like_over_the_limit_is_refused_writes_nothing_and_its_retry_works(
    deps, runtime, app_redis, clock, content
):
    limiter = tight(deps, app_redis)
    await set_reaction(deps, ALICE, content, R.LIKE, "r1", limiter=limiter)
    await set_reaction(deps, ALICE, content, R.LOVE, "r2", limiter=limiter)
    events_before = await stream_events(app_redis)
    with pytest.raises(RateLimited) as refused:
        await set_reaction(deps, ALICE, content, R.WOW, "r3", limiter=limiter, addr="a1")
    assert refused.value.code == "RATE_LIMITED"
    assert refused.value.extensions() == {"retryAfterMs": 1000}
    # Nothing written: the reaction is as it was, no event, and the key is free again.
    assert (await deps.reactions.get(content, "alice")).reaction is R.LOVE
    assert await stream_events(app_redis) == events_before
    assert await deps.idempotency.get("alice", "r3") is None
    # Without a requestId just the same; unlikes have limits of their own.
    with pytest.raises(RateLimited):
        await set_reaction(deps, ALICE, content, R.WOW, limiter=limiter)
    clock.advance(seconds=1)
    done = await set_reaction(deps, ALICE, content, R.WOW, "r3", limiter=limiter)
    assert done.changed and done.viewer_reaction is R.WOW
    # A retry of a done request replays, over the limit or not.
    again = await set_reaction(deps, ALICE, content, R.WOW, "r3", limiter=limiter)
    assert again == done


async def test_a_like_carries_the_hashed_address_and_the_device(deps, app_redis, clock, content):
    await set_reaction(deps, ALICE, content, R.LIKE, addr="0123456789abcdef", device_id="ph1")
    await set_reaction(deps, Actor("bob"), content, R.LIKE)
    reactions = [e for e in await stream_events(app_redis) if e["kind"] == "reaction"]
    by_actor = {e["actor"]: e["data"] for e in reactions}
    assert by_actor["alice"]["addr"] == "0123456789abcdef"
    assert by_actor["alice"]["device"] == "ph1"
    assert by_actor["bob"]["addr"] is None and by_actor["bob"]["device"] is None


async def test_a_view_over_the_limit_is_recorded_but_not_counted(
    deps, runtime, app_redis, clock, video
):
    limiter = tight(deps, app_redis)
    batch = [
        {"content_id": "v1", "session_id": "s1", "device_id": "ph", "watched_ms": 31_000},
        {
            "content_id": "p1",
            "session_id": "s2",
            "device_id": "ph",
            "watched_ms": 5_000,
            "visible_fraction": 0.9,
        },
    ]
    first, second = await record_views(deps, None, batch, addr="feedface00000000", limiter=limiter)
    assert first.decision.counted
    assert (second.decision.counted, second.decision.reason) == (False, "not counted")
    stored = (await deps.views.sessions.get_many(["s2"]))["s2"].session
    assert stored.watched_ms == 5_000 and not stored.counted
    events = await stream_events(app_redis)
    raw = [e for e in events if e["kind"] == "view_event"]
    assert {e["data"]["session_id"] for e in raw} == {"s1", "s2"}
    assert all(e["data"]["addr"] == "feedface00000000" for e in raw)
    assert all(e["data"]["device"] == "ph" for e in raw)
    (counted,) = [e for e in events if e["kind"] == "view"]
    assert counted["data"]["addr"] == "feedface00000000" and counted["data"]["device"] == "ph"
    # After the interval, the session's next event counts it.
    clock.advance(seconds=1)
    (later,) = await record_views(
        deps,
        None,
        [
            {
                "content_id": "p1",
                "session_id": "s2",
                "device_id": "ph",
                "watched_ms": 1_000,
                "visible_fraction": 0.9,
            }
        ],
        limiter=limiter,
    )
    assert later.decision.counted


# --------------------------------------------------------------------------- over GraphQL

LIKE = """mutation($id: ID!, $r: String) {
  like(input: {contentId: $id, requestId: $r, deviceId: "ph1"}) { changed } }"""


async def _like(app, token: str, request_id: str | None, cid: str) -> dict:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post(
            "/graphql",
            json={"query": LIKE, "variables": {"id": cid, "r": request_id}},
            headers={"authorization": f"Bearer {token}"},
        )
    return r.json()


@pytest.mark.parametrize("request_id", ["k", None])
async def test_the_limits_add_one_round_trip_to_a_like(
    runtime, app_redis, content, monkeypatch, request_id
):
    """docs/PERFORMANCE.md: a like with a requestId was 4 Redis round trips (claim,
    append, counters read, complete), without 2; the integrity tier read adds one
    (concurrent with the reaction's MongoDB read), the limits one more (with a
    requestId sent together with the claim)."""
    services = runtime.services
    assert services.rate_limiter is not None and services.addresses is not None
    app = GraphQLApp(services)
    await services.addresses.warm()
    trips = {}
    for limits in (False, True):
        services.rate_limiter.enabled = limits
        key = None if request_id is None else f"{request_id}-{limits}"
        counted = RoundTrips(monkeypatch)
        body = await _like(app, issue_token("t" * 32, f"u-{limits}"), key, content)
        monkeypatch.undo()
        assert body == {"data": {"like": {"changed": True}}}
        trips[limits] = counted.count
    assert trips[True] == trips[False] + 1
    assert trips[False] == (5 if request_id else 3)


async def test_rate_limited_over_graphql(runtime, app_redis, content):
    services = runtime.services
    services.rate_limiter = tight(runtime.deps, app_redis)
    app = GraphQLApp(services)
    token = issue_token("t" * 32, "alice")
    assert "errors" not in await _like(app, token, "k1", content)
    assert "errors" not in await _like(app, token, "k2", content)
    body = await _like(app, token, "k3", content)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 0 < error["extensions"]["retryAfterMs"] <= 1000
    assert body["data"] is None


async def test_the_limits_add_one_round_trip_to_a_batch_of_views(
    deps, runtime, app_redis, clock, video, monkeypatch
):
    """A batch of 100 was 3 round trips (marks read, marks claim, append), and the
    viewers' integrity tiers one more, read together with the sessions; the check
    of every event's scopes is one more, sent together with them too."""
    store = RedisRateLimits(app_redis, KEYS)
    await store.load_scripts()  # at start-up, as open_runtime does
    limiter = RateLimiter(store)
    await deps.contents.get_many(["v1"])
    batch = [
        {"content_id": "v1", "session_id": f"s{i}", "device_id": f"d{i}", "watched_ms": 31_000}
        for i in range(100)
    ]
    trips = RoundTrips(monkeypatch)
    results = await record_views(deps, None, batch, addr="ab" * 8, limiter=limiter)
    assert all(r.decision.counted for r in results)
    assert trips.count == 5
