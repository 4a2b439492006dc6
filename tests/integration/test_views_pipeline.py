"""Views end to end below the API: policy decisions, sessions, dedupe, counters."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest

from domain import reads
from domain.errors import BadUserInput, ContentNotFound, Unauthenticated
from domain.events import view_end_event_id
from domain.identity import Actor
from domain.reconcile import reconcile
from domain.view_recording import record_views, view_session
from tests.integration.conftest import RoundTrips
from workers.outbox_relay import OutboxRelay

ALICE = Actor("alice")


def ev(session="s1", content="v1", **kw):
    return {"content_id": content, "session_id": session, **kw}


async def summary(deps, cid="v1"):
    (s,) = await reads.summaries(deps, None, [cid])
    return s


async def test_video_counts_once_watch_passes_30s(deps, clock, workers, video):
    (r,) = await record_views(deps, ALICE, [ev(watched_ms=20_000)])
    assert (r.decision.counted, r.decision.rule) == (False, "VIDEO.default")
    assert r.decision.reason == "watched 20.0 s < 30 s"
    clock.advance(seconds=12)
    (r,) = await record_views(deps, ALICE, [ev(watched_ms=11_200)])
    assert r.decision.counted and r.decision.reason == "watched 31.2 s >= 30 s"
    clock.advance(seconds=10)
    (r,) = await record_views(deps, ALICE, [ev(watched_ms=10_000)])
    assert r.decision.counted  # already counted: still true, not counted again
    await workers["aggregator"].run_once()
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (1, 1)
    found = await view_session(deps, ALICE, "s1")
    assert found.watched_ms == 41_200 and found.counted and found.events == 3


async def test_dedupe_window_per_viewer_with_controllable_clock(deps, clock, workers, video):
    (a,) = await record_views(deps, ALICE, [ev("s1", watched_ms=31_000)])
    clock.advance(hours=1)
    (b,) = await record_views(deps, ALICE, [ev("s2", watched_ms=31_000)])
    assert a.decision.counted and not b.decision.counted
    assert b.decision.reason == "duplicate: already counted for this viewer within 24 h"
    clock.advance(hours=24)
    (c,) = await record_views(deps, ALICE, [ev("s3", watched_ms=31_000)])
    assert c.decision.counted
    await workers["aggregator"].run_once()
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (2, 1)


async def test_anonymous_needs_device_and_is_deduped_by_it(deps, clock, workers, video):
    with pytest.raises(BadUserInput, match="deviceId is required"):
        await record_views(deps, None, [ev(watched_ms=31_000)])
    (a,) = await record_views(deps, None, [ev("s1", device_id="ph1", watched_ms=31_000)])
    (b,) = await record_views(deps, None, [ev("s2", device_id="ph1", watched_ms=31_000)])
    (c,) = await record_views(deps, None, [ev("s3", device_id="ph2", watched_ms=31_000)])
    assert [a.decision.counted, b.decision.counted, c.decision.counted] == [True, False, True]
    await workers["aggregator"].run_once()
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (2, 2)


async def test_repeated_event_id_and_events_after_final_are_ignored(deps, clock, video):
    results = await record_views(
        deps,
        ALICE,
        [
            ev(event_id="e1", watched_ms=10_000),
            ev(event_id="e1", watched_ms=10_000),
            ev(event_id="e2", watched_ms=0, final=True),
            ev(event_id="e3", watched_ms=50_000),
        ],
    )
    reasons = [r.decision.reason for r in results]
    assert reasons[1] == "repeated event 'e1': ignored"
    assert reasons[3] == "session ended: event ignored"
    assert not any(r.decision.counted for r in results)
    found = await view_session(deps, ALICE, "s1")
    assert found.watched_ms == 10_000 and found.ended


async def test_impossible_watch_time_is_kept_flagged_and_not_counted(deps, clock, video):
    await record_views(deps, ALICE, [ev(watched_ms=1_000)])
    clock.advance(seconds=2)
    (r,) = await record_views(deps, ALICE, [ev(watched_ms=60_000)])
    assert not r.decision.counted
    assert "wall" in r.decision.reason or "longer" in r.decision.reason, r.decision.reason
    found = await view_session(deps, ALICE, "s1")
    assert found.flags and not found.counted


async def test_visible_fraction_out_of_range_is_bad_input_and_writes_nothing(
    deps, runtime, clock, video
):
    with pytest.raises(BadUserInput, match=r"inputs\[1\]: visibleFraction"):
        await record_views(
            deps,
            ALICE,
            [
                ev("ok", content="p1", watched_ms=2_000, visible_fraction=0.9),
                ev("bad", content="p1", watched_ms=2_000, visible_fraction=1.5),
            ],
        )
    assert await runtime.db["view_sessions"].count_documents({}) == 0


async def test_post_needs_visibility(deps, clock, video):
    (low,) = await record_views(
        deps, ALICE, [ev("a", content="p1", watched_ms=2_000, visible_fraction=0.3)]
    )
    assert not low.decision.counted and "0.30 < 0.50" in low.decision.reason
    (high,) = await record_views(
        deps, Actor("bob"), [ev("b", content="p1", watched_ms=1_500, visible_fraction=0.8)]
    )
    assert high.decision.counted and high.decision.rule == "POST.default"


async def test_unknown_content_creates_nothing(deps, runtime, clock, video):
    with pytest.raises(ContentNotFound, match="ghost"):
        await record_views(deps, ALICE, [ev(content="ghost", watched_ms=31_000)])
    assert await runtime.db["view_sessions"].count_documents({}) == 0


async def test_batch_of_100_costs_constant_round_trips(
    deps, runtime, mongo_db, clock, workers, video, monkeypatch
):
    batch = [ev(f"s{i}", device_id=f"d{i}", watched_ms=31_000) for i in range(100)]
    await deps.contents.get_many(["v1"])  # warm the immutable content cache
    mongo_db.counts.clear()
    trips = RoundTrips(monkeypatch)
    results = await record_views(deps, None, batch)
    assert all(r.decision.counted for r in results)
    # The viewers' integrity tiers are read together with the sessions (MongoDB).
    assert trips.count == 4, "tiers read, marks read, marks claim, log append"
    assert sum(mongo_db.counts.values()) == 2, mongo_db.counts  # sessions read, bulk write
    monkeypatch.undo()
    await workers["aggregator"].run_once()
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (100, 100)
    assert await workers["archiver"].run_once() == 200  # 100 raw events + 100 counted views


async def test_concurrent_sessions_of_one_viewer_count_once(deps, clock, workers, video):
    batches = [[ev(f"s{i}", watched_ms=31_000)] for i in range(8)]
    results = await asyncio.gather(*(record_views(deps, ALICE, b) for b in batches))
    assert sum(r.decision.counted for (r,) in results) == 1
    await workers["aggregator"].run_once()
    assert (await summary(deps)).views == 1


async def test_flush_then_rebuild_and_reconcile_views(
    deps, runtime, clock, workers, video, app_redis
):
    for i in range(5):
        await record_views(deps, Actor(f"u{i}"), [ev(f"s{i}", watched_ms=31_000)])
    await workers["aggregator"].run_once()
    await app_redis.flushall()
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (5, 5)
    await app_redis.hset(runtime.services.keys.counters("v1"), mapping={"views": 9, "_last": 0})
    await app_redis.delete(runtime.services.keys.uniques("v1"))
    repairs, _ = await reconcile(deps, ["v1"], settle_ms=0)
    assert repairs[0].fields == {"views": (9, 5), "uniqueViewers": (0, 5)}
    s = await summary(deps)
    assert (s.views, s.unique_viewers) == (5, 5)


async def test_live_update_carries_views(deps, runtime, clock, workers, video):
    channel = runtime.services.keys.channel("v1")
    async with runtime.services.hub.subscribe([channel]) as sub:
        await record_views(deps, ALICE, [ev(watched_ms=31_000)])
        await workers["aggregator"].run_once()
        update = await asyncio.wait_for(sub.__anext__(), 5)
    data = orjson.loads(update.message)
    assert data["n"]["views"] == 1 and data["u"] == 1


async def test_view_session_only_for_its_viewer_or_admin(deps, clock, video):
    await record_views(deps, ALICE, [ev(watched_ms=1_000)])
    assert (await view_session(deps, ALICE, "s1")).session_id == "s1"
    assert (await view_session(deps, Actor("root", frozenset({"admin"})), "s1")).session_id == "s1"
    from domain.errors import NotFound

    with pytest.raises(NotFound):
        await view_session(deps, Actor("mallory"), "s1")
    with pytest.raises(Unauthenticated):
        await view_session(deps, None, "s1")


async def test_event_for_another_viewers_session_is_refused_alone(deps, clock, video):
    await record_views(deps, ALICE, [ev(watched_ms=1_000)])
    clock.advance(seconds=40)
    stolen, own = await record_views(
        deps, Actor("mallory"), [ev(watched_ms=40_000), ev("m1", watched_ms=31_000)]
    )
    assert not stolen.decision.counted
    assert stolen.decision.reason == "refused: session 's1' belongs to another viewer"
    assert own.decision.counted  # the rest of the batch is not lost
    found = await view_session(deps, ALICE, "s1")
    assert found.watched_ms == 1_000 and found.events == 1  # untouched


async def test_event_for_a_session_of_another_content_is_refused(deps, clock, video):
    await record_views(deps, ALICE, [ev(watched_ms=1_000)])
    (r,) = await record_views(deps, ALICE, [ev(content="p1", watched_ms=5_000)])
    assert r.decision.reason.startswith("refused: session 's1' is for content 'v1'")


# ------------------------------------------------ what analytics reads: region, watch time, ends


async def archived(runtime, workers, kind):
    """Events of ``kind`` as archived from the log, oldest first."""
    await workers["archiver"].run_once()
    found = [d async for d in runtime.db["events"].find({"kind": kind})]
    return sorted(found, key=lambda d: d["occurred_at_ms"])


async def archived_raw(runtime, workers):
    await workers["archiver"].run_once()
    found = [e async for doc in runtime.db["view_events"].find({}) for e in doc["events"]]
    return sorted(found, key=lambda e: e["occurred_at_ms"])


def ms(at):
    return int(at.timestamp() * 1000)


# (events as (seconds after the previous one, fields), accepted_ms of each raw event)
ACCEPTED = [
    ([(0, {"watched_ms": 10_000}), (12, {"watched_ms": 11_200})], [10_000, 11_200]),
    # Longer than the wall time since the session started: flagged, nothing accepted.
    ([(0, {"watched_ms": 1_000}), (2, {"watched_ms": 60_000})], [1_000, 0]),
    ([(0, {"watched_ms": 5_000}), (1, {"watched_ms": -5})], [5_000, 0]),
    ([(0, {"watched_ms": 0, "position_ms": 1_000})], [0]),
    # Past the duration (600 s) plus tolerance: flagged, as is all it says.
    ([(0, {"watched_ms": 2_000, "position_ms": 900_000})], [0]),
    # A repeated event is ignored: no raw event at all.
    (
        [(0, {"watched_ms": 3_000, "event_id": "a"}), (5, {"watched_ms": 3_000, "event_id": "a"})],
        [3_000],
    ),
]


@pytest.mark.parametrize(("steps", "accepted"), ACCEPTED)
async def test_raw_view_events_carry_accepted_watch_time_and_region(
    deps, runtime, clock, workers, video, steps, accepted
):
    for seconds, fields in steps:
        clock.advance(seconds=seconds)
        await record_views(deps, ALICE, [ev(**fields)], "SE")
    raw = await archived_raw(runtime, workers)
    assert [e["data"]["accepted_ms"] for e in raw] == accepted
    assert {e["data"]["region"] for e in raw} == {"SE"}
    found = await view_session(deps, ALICE, "s1")
    assert found.watched_ms == sum(accepted) and found.region == "SE"


# (requests as (fields, the request's region), data of the counted view beyond session_id)
COUNTED_DATA = [
    (
        [
            ({"watched_ms": 20_000, "platform": "IOS", "source": "FEED"}, "US"),
            ({"watched_ms": 11_000}, "FR"),
        ],
        {"platform": "IOS", "source": "FEED", "region": "US"},
    ),
    (
        [({"watched_ms": 20_000}, "unknown"), ({"watched_ms": 11_000, "platform": "TV"}, "DE")],
        {"platform": None, "source": None, "region": "unknown"},
    ),
    (
        [({"watched_ms": 31_000, "platform": "WEB"}, "JP")],
        {"platform": "WEB", "source": None, "region": "JP"},
    ),
]


@pytest.mark.parametrize(("requests", "data"), COUNTED_DATA)
async def test_counted_view_carries_platform_source_and_session_region(
    deps, runtime, clock, workers, video, requests, data
):
    for fields, region in requests:
        clock.advance(seconds=12)
        await record_views(deps, ALICE, [ev(**fields)], region)
    (view,) = await archived(runtime, workers, "view")
    # No address or device here: a signed-in viewer's use case called directly.
    assert view["data"] == {"session_id": "s1", "addr": None, "device": None, **data}
    # Every event of the session says the session's region.
    assert {e["data"]["region"] for e in await archived_raw(runtime, workers)} == {data["region"]}


# (events as (seconds after the previous one, fields), the end's data beyond session_id)
ENDS = [
    (  # counted, then ended
        [
            (0, {"watched_ms": 20_000, "position_ms": 20_000, "platform": "ANDROID"}),
            (15, {"watched_ms": 12_000, "position_ms": 32_000}),
            (5, {"watched_ms": 4_000, "position_ms": 30_000, "final": True}),
        ],
        {"position_ms": 32_000, "watched_ms": 36_000, "counted": True, "platform": "ANDROID"},
    ),
    (  # a single final event that does not count
        [(0, {"watched_ms": 5_000, "source": "SEARCH", "final": True})],
        {"position_ms": None, "watched_ms": 5_000, "counted": False, "source": "SEARCH"},
    ),
    (  # impossible final input still ends it, and adds nothing
        [(0, {"watched_ms": 8_000}), (1, {"watched_ms": 50_000, "final": True})],
        {"position_ms": None, "watched_ms": 8_000, "counted": False},
    ),
]


@pytest.mark.parametrize(("steps", "data"), ENDS)
async def test_a_final_event_ends_the_session_once_through_its_outbox(
    deps, runtime, clock, workers, video, steps, data
):
    for seconds, fields in steps:
        clock.advance(seconds=seconds)
        await record_views(deps, ALICE, [ev(**fields)], "CA")
    last_at = clock.at
    doc = await runtime.db["view_sessions"].find_one({"_id": "s1"})
    (pending,) = [e for e in doc["outbox"] if e["kind"] == "view_end"]
    # Events after the end change nothing and end nothing again.
    clock.advance(seconds=30)
    (r,) = await record_views(deps, ALICE, [ev(watched_ms=1_000, final=True)], "CA")
    assert r.decision.reason == "session ended: event ignored"
    (end,) = await archived(runtime, workers, "view_end")
    assert end["event_id"] == pending["event_id"] == view_end_event_id("v1", "s1", "u:alice")
    assert end["actor"] == "u:alice" and end["deltas"] == {} and end["unique"] is None
    assert end["occurred_at_ms"] == ms(last_at)
    expected = {
        "session_id": "s1",
        "duration_ms": 600_000,
        "platform": None,
        "source": None,
        "region": "CA",
        "reason": "final",
        **data,
    }
    assert end["data"] == expected
    await workers["aggregator"].run_once()
    assert (await summary(deps)).views == (1 if data["counted"] else 0)


async def test_a_lost_append_of_an_end_is_republished_from_the_outbox(
    deps, runtime, clock, workers, video, monkeypatch
):
    async def broken_append(events):
        raise ConnectionError("redis went away")

    monkeypatch.setattr(deps.log, "append", broken_append)
    await record_views(deps, None, [ev(device_id="ph1", watched_ms=3_000, final=True)])
    monkeypatch.undo()
    assert await archived(runtime, workers, "view_end") == []
    relay = OutboxRelay(
        runtime.services.outboxes,
        workers["outbox_relay"]._archive,
        deps.log,
        clock,
        grace=timedelta(seconds=10),
    )
    assert (await relay.run_once()).republished == 0  # inside the grace: maybe in flight
    clock.advance(seconds=11)
    assert (await relay.run_once()).republished == 1
    (end,) = await archived(runtime, workers, "view_end")
    assert end["event_id"] == view_end_event_id("v1", "s1", "d:ph1")
    assert end["data"]["counted"] is False and end["data"]["region"] == "unknown"


LIKE = "mutation($id: ID!) { like(input: {contentId: $id}) { changed } }"
RECORD = """mutation($id: ID!) { recordView(input: {contentId: $id, sessionId: "g1",
  watchedMs: 31000, platform: TV}) { decision { counted } } }"""
COUNTRY = "CloudFront-Viewer-Country"


@pytest.mark.parametrize(
    ("peer", "sent", "region"),
    [
        ("10.0.0.5", "us", "US"),
        ("203.0.113.9", "US", "unknown"),  # not from the proxy: a client's own header
        ("10.0.0.5", "USA", "unknown"),
        ("10.0.0.5", None, "unknown"),
    ],
)
async def test_region_from_a_trusted_proxy_reaches_like_and_view_events(
    deps, runtime, clock, workers, video, peer, sent, region
):
    import httpx

    from resolvers.auth import issue_token
    from transport.graphql_app import GraphQLApp
    from transport.region import parse_trusted_proxies

    app = GraphQLApp(
        runtime.services,
        region_header=COUNTRY,
        trusted_proxies=parse_trusted_proxies("10.0.0.0/24"),
    )
    headers = {"authorization": f"Bearer {issue_token('t' * 32, 'alice')}"}
    if sent is not None:
        headers[COUNTRY] = sent
    transport = httpx.ASGITransport(app=app, client=(peer, 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for query in (LIKE, RECORD):
            response = await client.post(
                "/graphql", json={"query": query, "variables": {"id": "v1"}}, headers=headers
            )
            assert "errors" not in response.json(), response.json()
    (reaction,) = await archived(runtime, workers, "reaction")
    (view,) = await archived(runtime, workers, "view")
    assert reaction["data"]["region"] == view["data"]["region"] == region
    assert view["data"]["platform"] == "TV"


async def test_a_websocket_context_has_the_upgrade_requests_region(runtime):
    from starlette.websockets import WebSocket

    from transport.graphql_app import GraphQLApp
    from transport.region import parse_trusted_proxies

    app = GraphQLApp(
        runtime.services,
        region_header=COUNTRY,
        trusted_proxies=parse_trusted_proxies("2001:db8::/32"),
    )

    async def receive():
        raise AssertionError("the context reads no message")

    async def send(message):
        raise AssertionError("the context sends no message")

    def socket(peer):
        scope = {
            "type": "websocket",
            "path": "/graphql",
            "headers": [(COUNTRY.lower().encode(), b"nz")],
            "client": (peer, 1),
        }
        return WebSocket(scope, receive, send)

    assert (await app.get_context(socket("2001:db8::7"), None)).region == "NZ"
    assert (await app.get_context(socket("2001:db9::7"), None)).region == "unknown"
    # Without a configured header nobody's region is believed.
    plain = GraphQLApp(runtime.services)
    assert (await plain.get_context(socket("2001:db8::7"), None)).region == "unknown"


async def test_a_session_sent_again_verbatim_is_evidence_once_per_address(
    deps, runtime, mongo_db, clock, workers, video, monkeypatch
):
    """A repeated event (its session ended or not) logs a ``view_replay`` for the
    integrity worker, named per session and address, in the batch's one append."""
    captured = ev(event_id="e1", watched_ms=35_000, position_ms=35_000, final=True)
    (first,) = await record_views(deps, ALICE, [captured], addr="home")
    assert first.decision.counted
    await deps.contents.get_many(["v1"])  # warm the immutable content cache
    # Without an address there is nothing to tell, and nothing is appended.
    trips = RoundTrips(monkeypatch)
    await record_views(deps, ALICE, [captured])
    silent = trips.count
    monkeypatch.undo()
    for addr in ("home", "proxy-1", "proxy-1", "proxy-2"):
        trips = RoundTrips(monkeypatch)
        (again,) = await record_views(deps, ALICE, [captured], addr=addr)
        # The append every batch that logs something makes (a batch of new events
        # costs the same, test_batch_of_100_costs_constant_round_trips).
        assert trips.count == silent + 1
        monkeypatch.undo()
        assert again.decision.reason == "session ended: event ignored"
    # The same ids from another viewer are refused, and held against nobody.
    (refused,) = await record_views(deps, Actor("mallory"), [captured], addr="proxy-3")
    assert refused.decision.reason.startswith("refused:")
    found = await archived(runtime, workers, "view_replay")
    assert sorted(d["data"]["addr"] for d in found) == ["home", "proxy-1", "proxy-2"]
    assert {(d["actor"], d["data"]["session_id"]) for d in found} == {("u:alice", "s1")}
    assert all(d["deltas"] == {} for d in found)
    await workers["aggregator"].run_once()
    assert (await summary(deps)).views == 1
