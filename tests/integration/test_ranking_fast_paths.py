"""rankingSignals and trending answer the same with the fast paths (compiled
execution, generated projectors) as on stock strawberry and graphql-core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.catalog import register_content
from domain.contents import ContentKind
from domain.identity import Actor
from domain.likes import set_reaction
from domain.reactions import ReactionType as R
from tests.integration.conftest import SERVICE
from tests.integration.doubles import FakeClock
from transport.graphql_app import GraphQLApp

RATES = "{ oneMinute fifteenMinutes oneHour }"
SIGNALS = (
    f"contentId likesPerMinute {RATES} viewsPerMinute {RATES} growthSlope velocityRatio "
    "engagementRatio viewToLikeConversion uniqueViewers averageWatchMs updatedAt __typename"
)
QUERIES = {
    "rankingSignals": (
        "query($ids: [ID!]!) { rankingSignals(contentIds: $ids) { " + SIGNALS + " } }"
    ),
    "aliases": (
        "query($ids: [ID!]!) { a: rankingSignals(contentIds: $ids) { id: contentId "
        "l: likesPerMinute { h: oneHour } } }"
    ),
    "trending": "{ trending(window: HOUR, first: 20) { rank score content { contentId kind } } }",
    "trending with signals": (
        "{ trending(window: HOUR, first: 20) { rank score content { contentId } signals { "
        + SIGNALS
        + " } } }"
    ),
}


async def _answer(runtime: Any, fast_paths: bool, query: str, variables: dict) -> Any:
    app = GraphQLApp(runtime.services, fast_paths=fast_paths)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/graphql", json={"query": query, "variables": variables})
    return r.json()


@pytest.mark.parametrize("name", list(QUERIES))
async def test_same_answer_with_and_without_fast_paths(runtime, name):
    deps = runtime.deps
    ids = [f"f{i}" for i in range(12)]
    for i, cid in enumerate(ids):
        await register_content(deps, SERVICE, cid, "creator", ContentKind.SHORT, None)
        for u in range(i % 4):
            await set_reaction(deps, Actor(f"fan{u}"), cid, R.LIKE)
    await runtime.workers["trending"].run_once()
    # The clock stands still between the answers (the rates slide with it).
    deps.clock = FakeClock(datetime.now(UTC) + timedelta(seconds=13))
    variables = {"ids": [*ids, "never-seen", ids[0]]}
    stock = await _answer(runtime, False, QUERIES[name], variables)
    assert "errors" not in stock, stock
    for _ in range(2):  # the second request runs on the cached plans and projectors
        assert await _answer(runtime, True, QUERIES[name], variables) == stock
    if name == "trending with signals":
        assert len(stock["data"]["trending"]) == 9  # the contents with likes
