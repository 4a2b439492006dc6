"""The like write path and the aggregator, on real Redis and mongomock."""

from __future__ import annotations

import asyncio

import pytest

from domain import reads
from domain.catalog import register_content
from domain.contents import ContentKind
from domain.errors import Conflict, ContentNotFound, IdempotencyKeyInUse, IdempotencyKeyReused
from domain.identity import Actor
from domain.likes import set_reaction
from domain.reactions import ReactionType as R
from domain.reconcile import reconcile
from storage.redis_stream import RedisEventConsumer, events_of
from tests.integration.conftest import SERVICE

ALICE, BOB = Actor("alice"), Actor("bob")


async def likes_of(deps, cid="c1"):
    (s,) = await reads.summaries(deps, None, [cid])
    return s


async def test_like_counts_once_and_shows_own_change_immediately(deps, workers, content):
    result = await set_reaction(deps, ALICE, content, R.LIKE)
    assert result.changed and result.viewer_reaction == R.LIKE
    assert result.summary.likes == 1  # read-your-writes before the aggregator ran
    assert (await likes_of(deps)).likes == 0  # others see it once aggregated
    assert await workers["aggregator"].run_once() == 1
    assert (await likes_of(deps)).likes == 1


async def test_same_reaction_twice_and_unlike_when_none(deps, workers, content):
    await set_reaction(deps, ALICE, content, R.LIKE)
    again = await set_reaction(deps, ALICE, content, R.LIKE)
    assert again.changed is False
    await set_reaction(deps, BOB, content, None)
    nothing = await set_reaction(deps, BOB, content, None)
    assert nothing.changed is False and nothing.viewer_reaction is None
    await workers["aggregator"].run_once()
    s = await likes_of(deps)
    assert s.likes == 1 and s.reactions == ((R.LIKE, 1),)


async def test_switch_moves_between_types_and_keeps_likes(deps, workers, content):
    await set_reaction(deps, ALICE, content, R.LIKE)
    await set_reaction(deps, BOB, content, R.LIKE)
    await workers["aggregator"].run_once()
    switched = await set_reaction(deps, ALICE, content, R.LOVE)
    assert switched.summary.likes == 2
    assert dict(switched.summary.reactions) == {R.LIKE: 1, R.LOVE: 1}
    await workers["aggregator"].run_once()
    s = await likes_of(deps)
    assert s.likes == 2 and dict(s.reactions) == {R.LIKE: 1, R.LOVE: 1}


async def test_unknown_content_creates_nothing(deps, runtime, app_redis):
    with pytest.raises(ContentNotFound):
        await set_reaction(deps, ALICE, "ghost", R.LIKE)
    assert await runtime.db["reactions"].count_documents({}) == 0
    assert await app_redis.keys("*cnt:ghost") == []
    assert (await likes_of(deps, "ghost")).likes == 0
    assert await app_redis.keys("*cnt:ghost") == []  # a read doesn't create counters either


async def test_redelivery_never_counts_twice(deps, runtime, workers, content, app_redis):
    for i in range(20):
        await set_reaction(deps, Actor(f"u{i}"), content, R.LIKE)
    keys = runtime.services.keys
    # A consumer reads the batch and "crashes" before acknowledging it.
    crashed = RedisEventConsumer(app_redis, keys, keys.AGGREGATOR_GROUP, "crashed")
    await crashed.ensure_groups()
    batch = await crashed.read(100, None)
    assert len(batch) == 20
    await runtime.deps.counters.apply(keys.partition(content), events_of(batch))
    # Its deliveries are claimed by the live aggregator and applied again: no effect.
    claimed = await RedisEventConsumer(
        app_redis, keys, keys.AGGREGATOR_GROUP, "test-consumer"
    ).claim_stale(0, 100)
    assert len(claimed) == 20
    await workers["aggregator"].process(claimed)
    # And a replay of the same events from the archive changes nothing either.
    await runtime.deps.log.append(events_of(batch))
    await workers["aggregator"].run_once()
    assert (await likes_of(deps)).likes == 20
    pending = await app_redis.xpending(keys.stream(keys.partition(content)), keys.AGGREGATOR_GROUP)
    assert pending["pending"] == 0


async def test_idempotent_retry_returns_same_payload_and_applies_once(deps, workers, content):
    first = await set_reaction(deps, ALICE, content, R.LIKE, "req-1")
    await set_reaction(deps, ALICE, content, None)  # state moves on
    again = await set_reaction(deps, ALICE, content, R.LIKE, "req-1")
    assert again == first
    await workers["aggregator"].run_once()
    assert (await likes_of(deps)).likes == 0  # the retry did not re-like
    with pytest.raises(IdempotencyKeyReused):
        await set_reaction(deps, ALICE, content, R.LOVE, "req-1")


async def test_concurrent_identical_requests_count_once(deps, workers, content):
    results = await asyncio.gather(
        *(set_reaction(deps, ALICE, content, R.LIKE, "tap") for _ in range(10)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, IdempotencyKeyInUse) for e in errors)
    assert ok and all(r == ok[0] for r in ok)
    await workers["aggregator"].run_once()
    assert (await likes_of(deps)).likes == 1


async def test_concurrent_double_taps_without_key_count_once(deps, workers, content):
    results = await asyncio.gather(*(set_reaction(deps, ALICE, content, R.LIKE) for _ in range(10)))
    assert sum(r.changed for r in results) == 1
    await workers["aggregator"].run_once()
    assert (await likes_of(deps)).likes == 1


async def test_crash_between_mongo_write_and_stream_append_loses_nothing(
    deps, runtime, workers, content, monkeypatch
):
    async def broken_append(events):
        raise ConnectionError("redis went away")

    monkeypatch.setattr(deps.log, "append", broken_append)
    result = await set_reaction(deps, ALICE, content, R.LIKE)
    assert result.changed  # acknowledged: it is safe in MongoDB's outbox
    monkeypatch.undo()
    assert await workers["aggregator"].run_once() == 0  # nothing reached the stream
    relay = workers["outbox_relay"]
    relay._grace = __import__("datetime").timedelta(0)
    report = await relay.run_once()
    assert report.republished == 1
    await workers["aggregator"].run_once()
    assert (await likes_of(deps)).likes == 1
    # The relay prunes what it republished; a second pass finds nothing.
    assert await relay.run_once() == type(report)(0, 0)
    assert await runtime.db["events"].count_documents({}) == 1


async def test_relay_prunes_archived_events_without_republishing(deps, runtime, workers, content):
    await set_reaction(deps, ALICE, content, R.LIKE)
    assert await workers["archiver"].run_once() == 1
    relay = workers["outbox_relay"]
    relay._grace = __import__("datetime").timedelta(0)
    report = await relay.run_once()
    assert (report.pruned, report.republished) == (1, 0)
    doc = await runtime.db["reactions"].find_one({"user_id": "alice"})
    assert doc["outbox"] == []


def relay_with(runtime, workers, deps, **options):
    """The app's relay, with no grace period and the given options."""
    from datetime import timedelta

    from workers.outbox_relay import OutboxRelay

    return OutboxRelay(
        runtime.services.outboxes,
        workers["outbox_relay"]._archive,
        deps.log,
        deps.clock,
        grace=timedelta(0),
        **options,
    )


async def test_one_relay_pass_drains_every_due_entry_in_batches(
    deps, runtime, workers, content, monkeypatch
):
    # Pruning is the relay's steady work: a pass that took one batch per outbox
    # every 5 s fell behind any real write rate and outboxes only grew.
    from workers import outbox_relay
    from workers.outbox_relay import RelayReport

    for i in range(7):
        await set_reaction(deps, Actor(f"u{i}"), content, R.LIKE)
    await set_reaction(deps, Actor("u0"), content, R.WOW)  # a second entry, same doc
    assert await workers["archiver"].run_once() == 8
    rests: list[float] = []

    async def rest(seconds):
        rests.append(seconds)

    ticks = iter(range(1000))
    monkeypatch.setattr(outbox_relay.asyncio, "sleep", rest)
    monkeypatch.setattr(outbox_relay.time, "monotonic", lambda: next(ticks))
    relay = relay_with(runtime, workers, deps, batch=3, share=0.25)
    assert await relay.run_once() == RelayReport(pruned=8, republished=0)
    # 7 documents in batches of 3 documents: 3 batches, each followed by a rest of
    # 3x its (fake) one-second duration, so the relay holds a quarter of the loop.
    assert rests == [3.0, 3.0, 3.0]
    assert await relay.run_once() == RelayReport(0, 0)


async def test_a_stop_ends_a_relay_pass_between_batches(deps, runtime, workers, content):
    from workers.outbox_relay import RelayReport

    for i in range(4):
        await set_reaction(deps, Actor(f"u{i}"), content, R.LIKE)
    await workers["archiver"].run_once()
    relay = relay_with(runtime, workers, deps, batch=1)
    stop = asyncio.Event()
    stop.set()
    assert await relay.run_once(stop) == RelayReport(0, 0)
    assert await relay.run_once() == RelayReport(4, 0)
    assert await runtime.db["reactions"].count_documents({"outbox.0": {"$exists": True}}) == 0


async def test_flushed_redis_is_rebuilt_with_exact_counts(deps, runtime, workers, app_redis):
    for cid in ("a", "b"):
        await register_content(deps, SERVICE, cid, "creator", ContentKind.POST, None)
    for i in range(7):
        await set_reaction(deps, Actor(f"u{i}"), "a", R.LIKE if i % 2 else R.WOW)
    await set_reaction(deps, Actor("u0"), "b", R.SAD)
    await workers["aggregator"].run_once()
    await app_redis.flushall()
    # Events appended after the flush (in flight) must not double count either.
    await set_reaction(deps, Actor("late"), "a", R.LIKE)
    a, b = await reads.summaries(deps, None, ["a", "b"])
    assert (a.likes, dict(a.reactions)) == (8, {R.LIKE: 4, R.WOW: 4})
    assert (b.likes, dict(b.reactions)) == (1, {R.SAD: 1})
    await workers["aggregator"].run_once()
    (a,) = await reads.summaries(deps, None, ["a"])
    assert a.likes == 8


async def test_reconciler_repairs_and_reports_drift(deps, runtime, workers, content, app_redis):
    for i in range(3):
        await set_reaction(deps, Actor(f"u{i}"), content, R.LIKE)
    await workers["aggregator"].run_once()
    key = runtime.services.keys.counters(content)
    await app_redis.hset(key, mapping={"likes": 99, "r:LIKE": 5, "_last": 0})
    repairs, busy = await reconcile(deps, [content], settle_ms=0)
    assert busy == []
    assert repairs[0].fields == {"likes": (99, 3), "r:LIKE": (5, 3)}
    assert (await likes_of(deps)).likes == 3
    report = await workers["reconciler"].run_once()
    assert report.checked == 1 and report.repairs == []


async def test_reconciler_leaves_busy_contents_for_next_run(
    deps, runtime, workers, content, app_redis
):
    await set_reaction(deps, ALICE, content, R.LIKE)
    await workers["aggregator"].run_once()  # just touched: _last is now
    await app_redis.hset(runtime.services.keys.counters(content), "likes", 42)
    repairs, busy = await reconcile(deps, [content], settle_ms=60_000)
    assert (repairs, busy) == ([], [content])


async def test_aggregator_publishes_one_coalesced_update_per_content(
    deps, runtime, workers, content
):
    hub = runtime.services.hub
    channel = runtime.services.keys.channel(content)
    async with hub.subscribe([channel]) as sub:
        for i in range(50):
            await set_reaction(deps, Actor(f"u{i}"), content, R.LIKE)
        await workers["aggregator"].run_once()
        update = await asyncio.wait_for(sub.__anext__(), 5)
    import orjson

    data = orjson.loads(update.message)
    assert data["c"] == content and data["n"]["likes"] == 50
    assert workers["aggregator"].applied_batches == 1


async def test_reactors_newest_first_with_cursor_and_filter(deps, content):
    for i in range(5):
        await set_reaction(deps, Actor(f"u{i}"), content, R.LOVE if i == 2 else R.LIKE)
    page1, more = await reads.reactors(deps, content, None, 2, None)
    assert [r.user_id for r in page1] == ["u4", "u3"] and more
    page2, more = await reads.reactors(deps, content, None, 2, reads.encode_cursor(page1[-1]))
    assert [r.user_id for r in page2] == ["u2", "u1"] and more
    page3, more = await reads.reactors(deps, content, None, 2, reads.encode_cursor(page2[-1]))
    assert [r.user_id for r in page3] == ["u0"] and not more
    loves, _ = await reads.reactors(deps, content, R.LOVE, 10, None)
    assert [r.user_id for r in loves] == ["u2"]
    await set_reaction(deps, Actor("u4"), content, None)
    page, _ = await reads.reactors(deps, content, None, 10, None)
    assert "u4" not in [r.user_id for r in page]


async def test_a_reaction_that_keeps_changing_is_a_conflict(deps, content, monkeypatch):
    async def always_stale(*args, **kwargs):
        return False  # another write won every time

    monkeypatch.setattr(deps.reactions, "save", always_stale)
    with pytest.raises(Conflict, match="kept changing"):
        await set_reaction(deps, ALICE, content, R.LIKE)
