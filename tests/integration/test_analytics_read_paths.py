"""The dashboard reads (nested sums, only the selected parts) give what the flat
read path gave, on a generated stream; and a query reads only what it selects."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest

from domain.analytics import (
    CONTENTS,
    PLATFORM,
    REGION,
    SERIES_FIELDS,
    SOURCE,
    AnalyticsPorts,
    ContentAnalytics,
    CreatorAnalytics,
    Granularity,
    TimeRange,
    add_counters,
    breakdown,
    bucket_starts,
    check_range,
    completion,
    content_scope,
    content_totals,
    cover,
    creator_scope,
    ms_of,
    reaction_changes,
    series,
    top_contents,
    totals,
)
from domain.analytics_reads import CONTENT_PARTS, content_analytics, creator_analytics
from domain.contents import Content
from domain.identity import Actor
from resolvers.auth import issue_token
from storage.mongo_analytics import COLLECTIONS, MongoAnalytics, bucket_id, flatten
from storage.redis_analytics import RedisAnalytics
from tests.integration.doubles import FakeConsumer
from tests.integration.test_analytics_rebuild import CONTENTS as GENERATED
from tests.integration.test_analytics_rebuild import NOW, Stream, schedule
from transport.graphql_app import GraphQLApp
from workers.analytics import AnalyticsWorker

ADMIN = Actor("ops", frozenset({"admin"}))
D, H, M = Granularity.DAY, Granularity.HOUR, Granularity.MINUTE


class Spy:
    """The rollups port, recording what each read asked for."""

    def __init__(self, inner: MongoAnalytics) -> None:
        self.inner = inner
        self.reads: list[tuple[Granularity, tuple[str, ...] | None]] = []
        self.first_likes = 0

    async def documents(
        self,
        scope: str,
        granularity: Granularity,
        starts: Sequence[int],
        fields: Sequence[str] | None = None,
    ) -> dict[int, dict[str, Any]]:
        self.reads.append((granularity, None if fields is None else tuple(fields)))
        return await self.inner.documents(scope, granularity, starts, fields)

    async def first_like_ms(self, content_id: str) -> int | None:
        self.first_likes += 1
        return await self.inner.first_like_ms(content_id)


class CountingSketches:
    def __init__(self, inner: RedisAnalytics) -> None:
        self.inner = inner
        self.calls = 0

    async def distinct(self, scope: str, pieces: Any) -> tuple[int, int]:
        self.calls += 1
        return await self.inner.distinct(scope, pieces)


@pytest.fixture
async def generated(runtime, deps, mongo_db, app_redis):
    keys = runtime.services.keys
    for cid, creator, kind, duration, _ in GENERATED:
        await deps.contents.insert(Content(cid, creator, kind, NOW - timedelta(days=6), duration))
    rollups = MongoAnalytics(mongo_db)
    sketches = RedisAnalytics(app_redis, keys, 3_600_000)
    worker = AnalyticsWorker(FakeConsumer(), deps.contents, rollups, sketches, sketches)
    for batch in schedule(Stream(20261201).build(), keys, random.Random(3)):
        await worker.process(batch)
    spy, counting = Spy(rollups), CountingSketches(sketches)
    deps.analytics = AnalyticsPorts(spy, counting)
    return spy, counting


async def _flat_buckets(
    db: Any, scope: str, g: Granularity, starts: Sequence[int]
) -> dict[int, dict[str, int]]:
    """The flat read path: every bucket whole, flattened one by one."""
    by_id = {bucket_id(scope, s): s for s in starts}
    cursor = db[COLLECTIONS[g]].find({"_id": {"$in": list(by_id)}})
    return {by_id[doc["_id"]]: flatten(doc) async for doc in cursor}


async def flat_content(
    db: Any, sketches: Any, content: Content, r: TimeRange, g: Granularity
) -> ContentAnalytics:
    widened = check_range(r, g)
    scope = content_scope(content.content_id)
    starts = bucket_starts(widened, g)
    buckets = await _flat_buckets(db, scope, g, starts)
    viewers, reactors = await sketches.distinct(
        scope, cover(ms_of(widened.start), ms_of(widened.end))
    )
    summed: dict[str, int] = {}
    for counters in buckets.values():
        add_counters(summed, counters)
    return ContentAnalytics(
        content.content_id,
        widened,
        g,
        totals(summed, viewers, reactors),
        series(starts, buckets),
        reaction_changes(summed),
        breakdown(summed, PLATFORM),
        breakdown(summed, SOURCE),
        breakdown(summed, REGION),
        completion(summed) if content.duration_ms else None,
        None,  # compared apart: it is not a sum
    )


async def flat_creator(
    db: Any, sketches: Any, creator: str, r: TimeRange, g: Granularity, top: int
) -> CreatorAnalytics:
    widened = check_range(r, g)
    scope = creator_scope(creator)
    starts = bucket_starts(widened, g)
    covering = cover(ms_of(widened.start), ms_of(widened.end))
    buckets = await _flat_buckets(db, scope, g, starts)
    summed: dict[str, int] = {}
    for counters in buckets.values():
        add_counters(summed, {k: v for k, v in counters.items() if k in SERIES_FIELDS})
    per_content: dict[str, int] = {}
    for piece in covering:
        got = await _flat_buckets(db, scope, piece.granularity, piece.starts)
        for counters in got.values():
            add_counters(per_content, {k: v for k, v in counters.items() if k.startswith(CONTENTS)})
    viewers, reactors = await sketches.distinct(scope, covering)
    by_views, by_likes = top_contents(content_totals(per_content), top)
    return CreatorAnalytics(
        creator,
        widened,
        g,
        totals(summed, viewers, reactors),
        series(starts, buckets),
        by_views,
        by_likes,
    )


def ranges() -> list[tuple[TimeRange, Granularity]]:
    return [
        (TimeRange(NOW - timedelta(days=6), NOW), D),
        (TimeRange(NOW - timedelta(days=5, hours=7, minutes=13), NOW - timedelta(hours=2)), H),
        (TimeRange(NOW - timedelta(hours=47, minutes=30), NOW - timedelta(hours=1)), M),
        (TimeRange(NOW - timedelta(hours=31, minutes=10), NOW - timedelta(hours=28)), M),
        (TimeRange(NOW - timedelta(days=3, minutes=1), NOW - timedelta(days=1, minutes=59)), H),
    ]


async def test_the_nested_read_path_equals_the_flat_one(deps, mongo_db, generated):
    _, counting = generated
    sketches = counting.inner
    for r, g in ranges():
        for cid, *_ in GENERATED:
            content = (await deps.contents.get_many([cid]))[cid]
            got = await content_analytics(deps, deps.analytics, ADMIN, cid, r, g)
            want = await flat_content(mongo_db, sketches, content, r, g)
            assert got.totals.views > 0 or g is M, (cid, g)  # the data reaches the range
            # The first like is not a sum: compared in the definitions' tests.
            assert got == replace(want, time_to_first_like_ms=got.time_to_first_like_ms), (
                cid,
                r,
                g,
            )
        for creator in ("alice", "bob"):
            for top in (0, 1, 2, 10):
                got_c = await creator_analytics(deps, deps.analytics, ADMIN, creator, r, g, top)
                want_c = await flat_creator(mongo_db, sketches, creator, r, g, top)
                assert got_c == want_c, (creator, r, g, top)


@pytest.mark.parametrize(
    ("selected", "fields", "sketch_calls", "first_likes"),
    [
        (None, ("completion", "likes_added", "likes_removed", "platform", "reactions",
                "region", "source", "views", "watch_ms"), 1, 1),
        ({"series"}, ("likes_added", "likes_removed", "views", "watch_ms"), 0, 0),
        ({"by_region"}, ("region",), 0, 0),
        ({"by_region", "reactions", "totals"},
         ("likes_added", "likes_removed", "reactions", "region", "views", "watch_ms"), 1, 0),
        ({"completion"}, ("completion",), 0, 0),
        ({"time_to_first_like_ms"}, None, 0, 1),
    ],
)  # fmt: skip
async def test_a_content_query_reads_only_the_selected_parts(
    deps, generated, selected, fields, sketch_calls, first_likes
):
    spy, counting = generated
    r, g = ranges()[0]
    full = await content_analytics(deps, deps.analytics, ADMIN, "a1", r, g)
    spy.reads.clear()
    counting.calls = spy.first_likes = 0
    got = await content_analytics(deps, deps.analytics, ADMIN, "a1", r, g, selected)
    assert spy.reads == ([] if fields is None else [(g, fields)])
    assert (counting.calls, spy.first_likes) == (sketch_calls, first_likes)
    for part in selected or CONTENT_PARTS:
        assert getattr(got, part) == getattr(full, part), part


async def test_a_creator_query_reads_only_the_selected_parts(deps, generated):
    spy, counting = generated
    r, g = ranges()[0]
    full = await creator_analytics(deps, deps.analytics, ADMIN, "alice", r, g)
    assert full.top_by_views and full.series
    spy.reads.clear()
    counting.calls = 0
    series_only = await creator_analytics(
        deps, deps.analytics, ADMIN, "alice", r, g, 10, {"series"}
    )
    assert spy.reads == [(g, SERIES_FIELDS)] and counting.calls == 0
    assert series_only.series == full.series and series_only.top_by_views == ()
    spy.reads.clear()
    tops = await creator_analytics(deps, deps.analytics, ADMIN, "alice", r, g, 10, {"top_by_likes"})
    assert spy.reads == [(D, (CONTENTS,))] and counting.calls == 0
    assert tops.top_by_likes == full.top_by_likes and tops.series == ()


async def test_the_resolver_reads_what_the_query_selects_fragments_included(runtime, generated):
    spy, counting = generated
    query = """query($r: TimeRange!) {
      contentAnalytics(contentId: "a1", range: $r, granularity: DAY) {
        contentId ...Where
        ... on ContentAnalytics { reactions { net } }
      }
      creatorAnalytics(creatorId: "alice", range: $r) { topByViews { contentId views } }
    }
    fragment Where on ContentAnalytics { byRegion { key views } }"""
    r, _ = ranges()[0]
    variables = {"r": {"from": r.start.isoformat(), "to": r.end.isoformat()}}
    token = issue_token("t" * 32, "ops", roles=["admin"])
    transport = httpx.ASGITransport(app=GraphQLApp(runtime.services))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["contentAnalytics"]["byRegion"]
    assert body["data"]["creatorAnalytics"]["topByViews"]
    assert sorted(spy.reads, key=str) == [(D, ("content",)), (D, ("reactions", "region"))]
    assert counting.calls == 0 and spy.first_likes == 0
