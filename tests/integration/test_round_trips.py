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
