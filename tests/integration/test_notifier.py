"""The notifier on a real Redis and mongomock, through real likes and the event log:
first likes and milestones exactly once (redelivery, replays, dips), excluded
engagement never counting, limits folding into a digest with true counts, mutes,
and VIRAL and TRENDING once per window."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from domain.analytics import ms_of
from domain.events import VIEW, EngagementEvent
from domain.identity import Actor
from domain.integrity import Tier
from domain.likes import set_reaction
from domain.log import Delivery
from domain.notifications import NotificationKind as K
from domain.notifications import NotifyConfig, Preferences
from domain.reactions import ReactionType as R
from storage.keys import Keys
from storage.mongo_notifications import MongoNotifications
from storage.redis_notifications import RedisNotifyState
from storage.redis_stream import RedisEventConsumer
from storage.redis_trending import RedisTrending
from tests.integration.doubles import FakeConsumer
from workers.notifier import NotifierWorker
from workers.trending import TrendingWorker

SETTLE_S = 60


class Published:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    async def publish(self, messages):
        self.messages.extend(messages.items())


def _worker(runtime, clock, consumer, publisher, config: NotifyConfig) -> NotifierWorker:
    deps, keys, r = runtime.deps, runtime.services.keys, runtime.redis
    return NotifierWorker(
        consumer,
        deps.contents,
        deps.reactions,
        deps.counters,
        RedisTrending(r, keys, 3_600_000),
        MongoNotifications(runtime.db),
        RedisNotifyState(r, keys, 3_600_000),
        publisher,
        clock,
        config,
    )


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def notifier(runtime, clock, published) -> NotifierWorker:
    consumer = RedisEventConsumer(
        runtime.redis, runtime.services.keys, Keys.NOTIFIER_GROUP, "test-consumer"
    )
    return _worker(runtime, clock, consumer, published, NotifyConfig(settle_s=SETTLE_S))


@pytest.fixture
def store(runtime) -> MongoNotifications:
    return MongoNotifications(runtime.db)


async def stored(store: MongoNotifications, creator: str = "creator") -> list:
    return list(reversed(await store.page(creator, 100, None, False)))


def kinds(rows) -> list[tuple[str, str]]:
    return [(n.kind.value, n.content_id) for n in rows]


async def likes(deps, cid: str, users, reaction=R.LIKE) -> None:
    for u in users:
        await set_reaction(deps, Actor(u), cid, reaction)


async def run(workers, notifier, clock, seconds: float = 0) -> None:
    """The aggregator, then the notifier, then time passes and the notifier ticks."""
    await workers["aggregator"].run_once()
    await notifier.run_once()
    if seconds:
        clock.advance(seconds=seconds)
        await notifier.tick()


async def test_first_like_once_even_after_an_unlike_and_a_new_like(
    deps, clock, workers, video, notifier, store, published
):
    await likes(deps, "v1", ["alice"])
    await run(workers, notifier, clock)
    assert await stored(store) == []  # not before the settle delay
    clock.advance(seconds=SETTLE_S + 1)
    await notifier.tick()
    [first] = await stored(store)
    assert first.kind is K.FIRST_LIKE and first.payload == {"actor": "alice"}
    assert first.text == "alice liked your video v1: its first like"
    assert [ch for ch, _ in published.messages] == ["lv:notify:creator"]

    await set_reaction(deps, Actor("alice"), "v1", None)
    await likes(deps, "v1", ["alice", "bob"])
    await run(workers, notifier, clock, SETTLE_S + 1)
    assert [n.kind for n in await stored(store)].count(K.FIRST_LIKE) == 1


async def test_a_like_withdrawn_within_the_settle_delay_is_no_first_like(
    deps, clock, workers, video, notifier, store
):
    await likes(deps, "v1", ["alice"])
    await set_reaction(deps, Actor("alice"), "v1", None)
    await run(workers, notifier, clock, SETTLE_S + 1)
    assert [n for n in await stored(store) if n.kind is K.FIRST_LIKE] == []
    await likes(deps, "v1", ["bob"])
    await run(workers, notifier, clock, SETTLE_S + 1)
    [first] = [n for n in await stored(store) if n.kind is K.FIRST_LIKE]
    assert first.payload == {"actor": "bob"}


async def test_milestones_once_through_redelivery_replays_and_dips(
    runtime, deps, clock, workers, video, notifier, store, published
):
    await likes(deps, "v1", [f"u{i}" for i in range(10)])
    await run(workers, notifier, clock, SETTLE_S + 1)
    miles = [n for n in await stored(store) if n.kind is K.MILESTONE]
    assert [(n.payload["metric"], n.payload["threshold"]) for n in miles] == [("likes", 10)]
    assert miles[0].text == "Your video v1 reached 10 likes"

    # A dip below 10 and a new crossing say nothing again.
    for u in ("u0", "u1", "u2"):
        await set_reaction(deps, Actor(u), "v1", None)
    await run(workers, notifier, clock, SETTLE_S + 1)
    await likes(deps, "v1", ["n1", "n2", "n3", "n4"])
    await run(workers, notifier, clock, SETTLE_S + 1)

    # A replay of the whole log by another group, and a second worker's redelivery.
    replay = RedisEventConsumer(runtime.redis, runtime.services.keys, "notifier-replay", "r")
    other = _worker(runtime, clock, replay, published, NotifyConfig(settle_s=SETTLE_S))
    await other.run_once()
    clock.advance(seconds=SETTLE_S + 1)
    await other.tick()
    await notifier.tick()
    rows = await stored(store)
    assert [n.kind for n in rows].count(K.MILESTONE) == 1
    assert [n.kind for n in rows].count(K.FIRST_LIKE) == 1
    assert len({n.id for n in rows}) == len(rows)


async def test_an_excluded_actors_likes_never_make_a_milestone_or_a_first_like(
    deps, clock, workers, video, notifier, store
):
    bots = [f"bot{i}" for i in range(12)]
    await deps.tiers.set_many({f"u:{b}": Tier.EXCLUDED for b in bots})
    await likes(deps, "v1", bots)
    await run(workers, notifier, clock, SETTLE_S + 1)
    reading = (await deps.counters.read(["v1"]))["v1"]
    assert reading.counters.get("x_likes") == 12 and reading.counters.get("likes", 0) == 0
    rows = await stored(store)
    assert [n.kind for n in rows if n.kind in (K.MILESTONE, K.FIRST_LIKE)] == []
    clock.advance(seconds=700)
    await notifier.tick()
    assert await stored(store) == []  # no digest of excluded reactions either


async def test_doubtful_likes_are_not_counted_toward_milestones(
    deps, clock, workers, video, notifier, store
):
    doubtful = [f"d{i}" for i in range(5)]
    await deps.tiers.set_many({f"u:{b}": Tier.DOUBTFUL for b in doubtful})
    await likes(deps, "v1", doubtful + [f"t{i}" for i in range(8)])
    await run(workers, notifier, clock, SETTLE_S + 1)
    assert [n for n in await stored(store) if n.kind is K.MILESTONE] == []  # 8 trusted of 13
    await likes(deps, "v1", ["t8", "t9"])
    await run(workers, notifier, clock, SETTLE_S + 1)
    [mile] = [n for n in await stored(store) if n.kind is K.MILESTONE]
    assert mile.payload["value"] == 10


async def test_a_digest_names_the_latest_reactors_and_counts_them_once(
    deps, clock, workers, video, notifier, store
):
    await likes(deps, "v1", ["alice", "bob"])
    clock.advance(seconds=5)
    await likes(deps, "v1", ["carol", "dave"])
    clock.advance(seconds=1)
    await set_reaction(deps, Actor("alice"), "v1", R.LOVE)  # a switch: alice again
    await run(workers, notifier, clock)
    await notifier.run_once()  # nothing new: the window stays as it was
    clock.advance(seconds=601)
    await notifier.tick()
    [digest] = [n for n in await stored(store) if n.kind is K.REACTIONS_DIGEST]
    assert digest.payload["count"] == 4
    assert digest.payload["actors"] == ["alice", "dave", "carol"]
    assert digest.text == "alice, dave and 2 others reacted to your video v1"
    # The next reaction opens a new window.
    await likes(deps, "v1", ["erin"])
    await run(workers, notifier, clock, 601)
    digests = [n for n in await stored(store) if n.kind is K.REACTIONS_DIGEST]
    assert [d.payload["count"] for d in digests] == [4, 1]
    assert digests[1].text == "erin reacted to your video v1"


async def test_a_redelivered_batch_changes_nothing(clock, runtime, video, store, published):
    consumer = FakeConsumer()
    worker = _worker(runtime, clock, consumer, published, NotifyConfig(settle_s=0))
    ms = ms_of(clock.now())
    events = tuple(
        EngagementEvent(
            f"r-{u}-1", "reaction", "v1", u, ms, {"likes": 1, "r:LIKE": 1}, None, {"after": "LIKE"}
        )
        for u in ("a", "b", "c")
    )
    batch = [Delivery(0, "1-0", events)]
    await worker.process(batch)
    await worker.process(batch)
    await worker.process([Delivery(0, "1-0", events[:1]), Delivery(0, "2-0", events[1:])])
    clock.advance(seconds=601)
    await worker.tick()
    [digest] = [n for n in await stored(store) if n.kind is K.REACTIONS_DIGEST]
    assert digest.payload["count"] == 3


async def test_over_the_limits_updates_fold_into_a_digest_with_true_counts(
    deps, clock, workers, video, notifier, store
):
    notifier.config = replace(notifier.config, per_content_per_hour=2)
    users = [f"u{i}" for i in range(100)]
    await likes(deps, "v1", users[:10])
    await run(workers, notifier, clock, SETTLE_S + 1)  # FIRST_LIKE, MILESTONE 10
    await likes(deps, "v1", users[10:])
    await run(workers, notifier, clock, SETTLE_S + 1)  # MILESTONE 100: over the limit
    assert kinds(await stored(store)) == [("FIRST_LIKE", "v1"), ("MILESTONE", "v1")]
    clock.advance(seconds=600)
    await notifier.tick()  # the window is due, and waits: the hour is full
    assert len(await stored(store)) == 2
    await likes(deps, "v1", ["late1", "late2"])  # they join the waiting window
    await run(workers, notifier, clock)
    clock.advance(minutes=60)
    await notifier.tick()
    rows = await stored(store)
    assert kinds(rows) == [
        ("FIRST_LIKE", "v1"),
        ("MILESTONE", "v1"),
        ("REACTIONS_DIGEST", "v1"),
    ]
    digest = rows[-1]
    assert digest.payload["count"] == 102
    assert digest.payload["folded_count"] == 1
    [folded] = digest.payload["folded"]
    assert folded["kind"] == "MILESTONE" and folded["payload"]["threshold"] == 100
    assert digest.text == "late2, late1 and 100 others reacted to your video v1, and 1 more update"


async def test_folded_updates_without_a_digest_come_in_one_of_their_own(
    runtime, deps, clock, workers, video, notifier, store
):
    notifier.config = replace(notifier.config, per_hour=1)
    await likes(deps, "p1", ["x"])  # FIRST_LIKE p1: the hour's one notification
    await run(workers, notifier, clock, SETTLE_S + 1)
    await likes(deps, "v1", [f"u{i}" for i in range(10)])
    await run(workers, notifier, clock, SETTLE_S + 1)  # FIRST_LIKE, MILESTONE v1: folded
    assert kinds(await stored(store)) == [("FIRST_LIKE", "p1")]
    clock.advance(minutes=61)
    await notifier.maintain()
    rows = await stored(store)
    assert kinds(rows) == [("FIRST_LIKE", "p1"), ("REACTIONS_DIGEST", "v1")]
    assert rows[-1].payload["folded_count"] == 2 and rows[-1].payload["count"] == 0
    assert rows[-1].text == "2 more updates about your video v1"
    await notifier.maintain()
    assert len(await stored(store)) == 2


async def test_muted_kinds_and_contents_are_not_created(
    deps, clock, workers, video, notifier, store
):
    await store.save_preferences(
        Preferences("creator", frozenset({K.MILESTONE}), frozenset({"p1"}))
    )
    await likes(deps, "v1", [f"u{i}" for i in range(10)])
    await likes(deps, "p1", [f"u{i}" for i in range(10)])
    await run(workers, notifier, clock, 601)
    assert kinds(await stored(store)) == [("FIRST_LIKE", "v1"), ("REACTIONS_DIGEST", "v1")]
    assert await runtime_folds(store) == 0


async def runtime_folds(store: MongoNotifications) -> int:
    return int(await store._folds.count_documents({}))


def view(cid: str, ms: int, n: int) -> EngagementEvent:
    viewer = f"d:{cid}-{ms}-{n}"
    return EngagementEvent(f"v-{cid}-{ms}-{n}", VIEW, cid, viewer, ms, {"views": 1}, viewer, {})


async def test_viral_and_trending_once_per_window(runtime, clock, video, store, published):
    keys = runtime.services.keys
    ranking = RedisTrending(runtime.redis, keys, 3_600_000)
    trend = TrendingWorker(FakeConsumer(), runtime.deps.contents, ranking, published, clock)
    worker = _worker(runtime, clock, FakeConsumer(), published, NotifyConfig(settle_s=0))
    start = clock.now()
    # An hour of one view a minute, then a burst: 10 a minute for 5 minutes.
    events = [view("v1", ms_of(start) + m * 60_000, 0) for m in range(60)]
    events += [view("v1", ms_of(start) + (60 + m // 10) * 60_000, m) for m in range(50)]
    clock.at = start + timedelta(minutes=65)
    batch = [Delivery(keys.partition("v1"), "1-0", tuple(events))]
    await trend.process(batch)
    await worker.process(batch)
    await worker.process(batch)  # redelivered
    # In every window's list at once: told once, its best place.
    [first] = [n for n in await stored(store) if n.kind is K.TRENDING]
    assert first.payload == {"window": "DAY", "rank": 1}
    clock.advance(hours=2)
    more = [view("v1", ms_of(clock.now()) - 60_000 + m * 1000, 1) for m in range(50)]
    second = [Delivery(keys.partition("v1"), "2-0", tuple(more))]
    await trend.process(second)
    await worker.process(second)
    rows = await stored(store)
    [viral] = [n for n in rows if n.kind is K.VIRAL]
    assert viral.payload["velocity_ratio"] >= 5.0
    trend_rows = [n for n in rows if n.kind is K.TRENDING]
    windows = [n.payload["window"] for n in trend_rows]
    assert windows and len(windows) == len(set(windows))
    assert all(n.payload["rank"] == 1 for n in trend_rows)
