"""A feed of N cards costs one Redis round trip and one MongoDB query, whatever N."""

from __future__ import annotations

import pytest

from domain.catalog import register_content
from domain.contents import ContentKind
from domain.identity import Actor
from domain.likes import set_reaction
from domain.reactions import ReactionType as R
from resolvers.auth import issue_token
from tests.integration.conftest import SERVICE, RoundTrips
from transport.graphql_app import GraphQLApp

FEED = """query($ids: [ID!]!) { engagementSummaries(contentIds: $ids) {
  contentId likes reactions { reaction count } viewerReaction } }"""


@pytest.mark.parametrize("n", [1, 10, 100])
async def test_feed_costs_constant_round_trips(runtime, mongo_db, monkeypatch, n):
    deps = runtime.deps
    ids = [f"c{i}" for i in range(n)]
    for cid in ids:
        await register_content(deps, SERVICE, cid, "creator", ContentKind.SHORT, None)
    await set_reaction(deps, Actor("viewer"), ids[0], R.LOVE)
    await runtime.workers["aggregator"].run_once()
    # Warm the (immutable) content cache the way a running server has it.
    await deps.contents.get_many(ids)

    import httpx

    app = GraphQLApp(runtime.services)
    token = issue_token("t" * 32, "viewer")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        mongo_db.counts.clear()
        trips = RoundTrips(monkeypatch)
        response = await client.post(
            "/graphql",
            json={"query": FEED, "variables": {"ids": ids}},
            headers={"authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert "errors" not in body, body
    cards = body["data"]["engagementSummaries"]
    assert [c["contentId"] for c in cards] == ids
    assert cards[0]["viewerReaction"] == "LOVE" and cards[0]["likes"] == 1
    assert trips.count == 1
    assert sum(mongo_db.counts.values()) == 1, mongo_db.counts
    assert mongo_db.counts["reactions.find"] == 1


async def test_every_summary_field_of_an_operation_shares_one_batch(runtime, mongo_db, monkeypatch):
    deps = runtime.deps
    ids = [f"c{i}" for i in range(6)]
    for cid in ids:
        await register_content(deps, SERVICE, cid, "creator", ContentKind.SHORT, None)
    await deps.contents.get_many(ids)
    query = """query($a: [ID!]!, $b: [ID!]!) {
      one: engagementSummary(contentId: "c0") { likes }
      two: engagementSummary(contentId: "c5") { contentId }
      feed: engagementSummaries(contentIds: $a) { contentId }
      more: engagementSummaries(contentIds: $b) { contentId } }"""
    import httpx

    app = GraphQLApp(runtime.services)
    token = issue_token("t" * 32, "viewer")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        mongo_db.counts.clear()
        trips = RoundTrips(monkeypatch)
        r = await c.post(
            "/graphql",
            json={"query": query, "variables": {"a": ids[:4], "b": ["c3", "c4", "c3"]}},
            headers={"authorization": f"Bearer {token}"},
        )
    data = r.json()["data"]
    assert data["two"]["contentId"] == "c5"
    assert [x["contentId"] for x in data["feed"]] == ids[:4]
    assert [x["contentId"] for x in data["more"]] == ["c3", "c4", "c3"]
    assert trips.count == 1
    assert mongo_db.counts["reactions.find"] == 1


async def test_anonymous_feed_needs_no_mongodb(runtime, mongo_db, monkeypatch):
    deps = runtime.deps
    await register_content(deps, SERVICE, "c0", "creator", ContentKind.SHORT, None)
    import httpx

    app = GraphQLApp(runtime.services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        mongo_db.counts.clear()
        trips = RoundTrips(monkeypatch)
        r = await c.post("/graphql", json={"query": FEED, "variables": {"ids": ["c0"] * 5}})
    assert r.json()["data"]["engagementSummaries"][4]["viewerReaction"] is None
    assert trips.count == 1
    assert sum(mongo_db.counts.values()) == 0


async def test_metrics_endpoint_counts_operations(runtime):
    import httpx

    app = GraphQLApp(runtime.services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await c.post("/graphql", json={"query": '{ engagementSummary(contentId: "x") { likes } }'})
        await c.post(
            "/graphql", json={"query": 'mutation { like(input: {contentId: "x"}) { changed } }'}
        )
    from prometheus_client import generate_latest

    text = generate_latest().decode()
    assert 'likeview_graphql_operations_total{outcome="ok",type="query"}' in text
    assert 'likeview_graphql_operations_total{outcome="error",type="mutation"}' in text


async def _trending_ready(runtime, n: int) -> list[str]:
    deps = runtime.deps
    ids = [f"t{i}" for i in range(n)]
    for i, cid in enumerate(ids):
        await register_content(deps, SERVICE, cid, "creator", ContentKind.SHORT, None)
        for u in range(i % 3 + 1):
            await set_reaction(deps, Actor(f"fan{u}"), cid, R.LIKE)
    await runtime.workers["trending"].run_once()
    return ids


async def _post(runtime, query: str, variables: dict) -> dict:
    import httpx

    app = GraphQLApp(runtime.services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/graphql", json={"query": query, "variables": variables})
    body = r.json()
    assert "errors" not in body, body
    return body["data"]


async def test_ranking_signals_of_100_contents_cost_one_redis_round_trip(
    runtime, mongo_db, monkeypatch
):
    ids = await _trending_ready(runtime, 100)
    query = """query($ids: [ID!]!) { rankingSignals(contentIds: $ids) {
      contentId likesPerMinute { oneMinute oneHour } viewsPerMinute { fifteenMinutes }
      growthSlope velocityRatio engagementRatio viewToLikeConversion uniqueViewers
      averageWatchMs updatedAt } }"""
    mongo_db.counts.clear()
    trips = RoundTrips(monkeypatch)
    data = await _post(runtime, query, {"ids": ids})
    assert [s["contentId"] for s in data["rankingSignals"]] == ids
    assert data["rankingSignals"][2]["likesPerMinute"]["oneHour"] == pytest.approx(3 / 60)
    assert trips.count == 1
    assert sum(mongo_db.counts.values()) == 0, mongo_db.counts


@pytest.mark.parametrize(("signals", "redis_trips"), [(False, 1), (True, 2)])
async def test_a_trending_page_costs_one_redis_round_trip_and_one_query(
    runtime, mongo_db, monkeypatch, signals, redis_trips
):
    await _trending_ready(runtime, 30)
    extra = "signals { likesPerMinute { oneHour } }" if signals else ""
    query = (
        f"{{ trending(window: HOUR, first: 20) {{ rank score content {{ contentId }} {extra} }} }}"
    )
    # Cold: a process that has not read these contents yet.
    runtime.deps.contents._cache.clear()
    mongo_db.counts.clear()
    trips = RoundTrips(monkeypatch)
    items = (await _post(runtime, query, {}))["trending"]
    assert [i["rank"] for i in items] == list(range(1, 21))
    assert trips.count == redis_trips
    assert sum(mongo_db.counts.values()) == 1, mongo_db.counts
