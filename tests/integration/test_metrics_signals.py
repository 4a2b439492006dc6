"""The operations metrics move when their signal happens (docs/OPERATIONS.md, "Metrics").

prometheus_client's registry is per process, so each test reads a value before
and after, and asserts the difference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import REGISTRY

from domain import reads
from domain.identity import Actor
from domain.likes import set_reaction
from domain.reactions import ReactionType as R
from domain.view_recording import record_views
from storage.redis_reconcile_queue import RedisReconcileQueue
from storage.redis_stream import CONSUMER_GROUPS, RedisEventConsumer, RedisEventLag
from workers.event_log_lag import EventLogLagProbe
from workers.reconciler import Reconciler

ALICE = Actor("alice")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def moved(name: str, labels: dict[str, str], action: Callable[[], Awaitable[Any]]) -> float:
    before = value(name, **labels)
    await action()
    return value(name, **labels) - before


async def test_a_like_that_changes_nothing_is_a_noop(deps, content):
    await set_reaction(deps, ALICE, content, R.LIKE)
    noop = await moved(
        "likeview_like_noops_total",
        {"op": "like"},
        lambda: set_reaction(deps, ALICE, content, R.LIKE),
    )
    assert noop == 1
    assert (
        await moved(
            "likeview_like_noops_total",
            {"op": "unlike"},
            lambda: set_reaction(deps, Actor("bob"), content, None),
        )
        == 1
    )


async def test_a_retried_request_id_is_an_idempotent_replay(deps, content):
    await set_reaction(deps, ALICE, content, R.LIKE, "req-1")
    replays = await moved(
        "likeview_idempotent_replays_total",
        {"op": "like"},
        lambda: set_reaction(deps, ALICE, content, R.LIKE, "req-1"),
    )
    assert replays == 1
    # A replay is not a no-op: the like itself was not attempted again.
    assert (
        await moved(
            "likeview_like_noops_total",
            {"op": "like"},
            lambda: set_reaction(deps, ALICE, content, R.LIKE, "req-1"),
        )
        == 0
    )


def view(session: str, content: str = "v1", **kw: Any) -> dict[str, Any]:
    return {"content_id": content, "session_id": session, **kw}


async def test_deduped_views_are_counted_by_scope_and_repeated_event_ids(deps, clock, video):
    await record_views(deps, ALICE, [view("s1", watched_ms=31_000)])
    # A second session of the same viewer passes its rule inside the window.
    assert (
        await moved(
            "likeview_view_events_deduped_total",
            {"scope": "viewer"},
            lambda: record_views(deps, ALICE, [view("s2", watched_ms=31_000)]),
        )
        == 1
    )
    # More events of a session that counted: the session scope.
    assert (
        await moved(
            "likeview_view_events_deduped_total",
            {"scope": "session"},
            lambda: record_views(deps, ALICE, [view("s1", watched_ms=1_000, event_id="e1")]),
        )
        == 1
    )
    # The same eventId again: ignored, and said so.
    assert (
        await moved(
            "likeview_view_events_repeated_total",
            {},
            lambda: record_views(deps, ALICE, [view("s1", watched_ms=1_000, event_id="e1")]),
        )
        == 1
    )
    # A first count is no dedupe at all.
    before = value("likeview_view_events_deduped_total", scope="viewer")
    await record_views(deps, Actor("bob"), [view("s3", watched_ms=31_000)])
    assert value("likeview_view_events_deduped_total", scope="viewer") == before


async def test_record_views_latency_is_observed_per_batch_and_per_event(deps, clock, video):
    batch = [view(f"b{i}", watched_ms=1_000) for i in range(5)]
    calls = "likeview_view_batch_seconds_count"
    events = "likeview_view_events_total"
    before = (value(calls), value("likeview_view_event_seconds_count"), value(events))
    await record_views(deps, ALICE, batch)
    after = (value(calls), value("likeview_view_event_seconds_count"), value(events))
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 5]


async def test_counter_reads_say_redis_or_recount(runtime, deps, content, app_redis):
    await set_reaction(deps, ALICE, content, R.LIKE)
    await runtime.workers["aggregator"].run_once()
    keys = runtime.services.keys
    await app_redis.delete(keys.counters(content), keys.uniques(content))
    recount = await moved(
        "likeview_counter_reads_total",
        {"source": "recount"},
        lambda: reads.summaries(deps, None, [content]),
    )
    assert recount == 1
    # Installed by the recount: the next read is served by Redis.
    assert (
        await moved(
            "likeview_counter_reads_total",
            {"source": "redis"},
            lambda: reads.summaries(deps, None, [content]),
        )
        == 1
    )


async def test_reconciler_reports_the_absolute_drift(runtime, deps, content, app_redis):
    await set_reaction(deps, ALICE, content, R.LIKE)
    await runtime.workers["aggregator"].run_once()
    keys = runtime.services.keys
    # Redis says 40 likes and 3 WOWs; the truth is 1 like and no WOW: |40-1| + |3-0|.
    await app_redis.hset(keys.counters(content), mapping={"likes": 40, "r:WOW": 3, "_last": 0})

    async def no_sleep(_: float) -> None:
        return None

    reconciler = Reconciler(deps, RedisReconcileQueue(app_redis, keys), settle_ms=0, sleep=no_sleep)
    drift = await moved(
        "likeview_reconciler_drift_total", {"kind": "counters"}, reconciler.run_once
    )
    assert drift == 42
    assert value("likeview_reconciler_last_drift") == 42
    # Repaired: the next pass finds none.
    await reconciler.run_once()
    assert value("likeview_reconciler_last_drift") == 0


async def test_counter_lag_is_observed_when_the_aggregator_applies(runtime, deps, content):
    await set_reaction(deps, ALICE, content, R.LIKE)
    count = "likeview_counter_lag_seconds_count"
    assert await moved(count, {}, runtime.workers["aggregator"].run_once) == 1


async def test_event_log_lag_per_group_and_partition(runtime, deps, content, app_redis):
    keys = runtime.services.keys
    probe = EventLogLagProbe(RedisEventLag(app_redis, keys, CONSUMER_GROUPS))
    await runtime.workers["aggregator"].run_once()  # creates the aggregator's groups
    await set_reaction(deps, ALICE, content, R.LIKE)
    partition = keys.partition(content)
    lags = {(g.group, g.partition): g for g in await probe.run_once()}
    assert set(lags) == {(g, p) for g in CONSUMER_GROUPS for p in range(keys.partitions)}
    waiting = lags[("aggregator", partition)]
    assert (waiting.undelivered, waiting.pending) == (1, 0)
    assert 0 <= waiting.undelivered_age_ms < 60_000
    labels = {"group": "aggregator", "partition": str(partition)}
    assert value("likeview_event_log_undelivered_entries", **labels) == 1
    # A group never created (its worker never ran) waits for the whole stream.
    assert lags[("notifier", partition)].undelivered == 1

    # Delivered, not acknowledged: pending, with the age of the oldest.
    consumer = RedisEventConsumer(app_redis, keys, "aggregator", "stuck")
    assert len(await consumer.read(10, None)) == 1
    stuck = {(g.group, g.partition): g for g in await probe.run_once()}
    held = stuck[("aggregator", partition)]
    assert (held.undelivered, held.pending, held.undelivered_age_ms) == (0, 1, 0)
    assert value("likeview_event_log_pending_entries", **labels) == 1
    assert value("likeview_event_log_pending_age_seconds", **labels) >= 0

    await runtime.workers["aggregator"].process(await consumer.read(10, None, pending=True))
    done = {(g.group, g.partition): g for g in await probe.run_once()}
    assert (
        done[("aggregator", partition)].pending,
        done[("aggregator", partition)].undelivered,
    ) == (
        0,
        0,
    )
    assert value("likeview_event_log_pending_entries", **labels) == 0
