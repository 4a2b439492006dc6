"""The rollups the worker builds from the log (delivered out of order, twice, replayed,
across a crash) are exactly what a rebuild from the archive builds."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from domain.analytics import (
    DAY_MS,
    HOUR_MS,
    Granularity,
    add_counters,
    at_ms,
    bucket_start,
    event_counters,
    ms_of,
)
from domain.contents import Content, ContentKind
from domain.errors import ContentNotFound
from domain.events import (
    RAW_VIEW,
    REACTION,
    VIEW,
    VIEW_END,
    EngagementEvent,
    reaction_event_id,
    view_end_event_id,
    view_event_id,
)
from domain.log import Delivery
from domain.reactions import ReactionType, transition
from storage.keys import Keys
from storage.mongo_analytics import COLLECTIONS, FIRSTS, MongoAnalytics, flatten
from storage.mongo_events import MongoEventArchive
from storage.redis_analytics import RedisAnalytics
from tests.integration.doubles import CrashOnce, FakeConsumer
from workers.analytics import AnalyticsWorker
from workers.analytics_rebuild import rebuild

NOW = datetime.now(UTC)
# Minute buckets (and their sketches) go 48 hours after their start: no event is
# put near that edge, so nothing expires between the two snapshots.
MINUTE_EDGE = NOW - timedelta(hours=48)
OFFSETS = [
    timezone(timedelta(hours=h, minutes=m))
    for h, m in [(0, 0), (5, 30), (-8, 0), (9, 0), (-3, -30), (14, 0)]
]
CONTENTS = [
    # id, creator, kind, duration, sessions
    ("a1", "alice", ContentKind.VIDEO, 600_000, 260),
    ("a2", "alice", ContentKind.VIDEO, 45_000, 70),
    ("a3", "alice", ContentKind.POST, None, 50),
    ("b1", "bob", ContentKind.VIDEO, 300_000, 90),
    ("b2", "bob", ContentKind.POST, None, 40),
]
PLATFORMS = ["IOS", "ANDROID", "WEB", "TV", None]
SOURCES = ["FEED", "SEARCH", "PROFILE", "EXTERNAL", None]
REGIONS = ["US", "DE", "BR", "JP", "unknown"]


class Stream:
    """A seeded stream of analytics events of several days, as the view and like
    paths emit them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.events: list[EngagementEvent] = []

    def moment(self, after: int | None = None, within_s: int = 0) -> int:
        """A time in the last five days, made from a wall-clock time in some offset."""
        rng = self.rng
        while True:
            if after is None:
                ms = ms_of(NOW - timedelta(days=5)) + rng.randrange(5 * DAY_MS - 2 * HOUR_MS)
            else:
                ms = after + rng.randrange(1, within_s * 1000)
            if abs(ms - ms_of(MINUTE_EDGE)) > HOUR_MS / 2 and ms < ms_of(NOW) - HOUR_MS:
                break
            after = None
        local = at_ms(ms).astimezone(rng.choice(OFFSETS))
        wall = datetime(
            local.year,
            local.month,
            local.day,
            local.hour,
            local.minute,
            local.second,
            local.microsecond,
            tzinfo=local.tzinfo,
        )
        return ms_of(wall)

    def maybe(self, data: dict[str, Any], key: str, value: Any, missing: float = 0.1) -> None:
        # Older events lack the newer fields.
        if self.rng.random() >= missing:
            data[key] = value

    def session(
        self, cid: str, duration: int | None, n: int, viewers: list[str], at: int | None = None
    ) -> None:
        rng = self.rng
        viewer = rng.choice(viewers)
        sid = f"s{n}"
        platform, source, region = (
            rng.choice(PLATFORMS),
            rng.choice(SOURCES),
            rng.choice(REGIONS),
        )
        t = self.moment() if at is None else self.moment(at, 3600)
        position = 0
        for seq in range(rng.randint(1, 5)):
            t = self.moment(t, 40) if seq else t
            accepted = 0 if rng.random() < 0.15 else rng.randrange(1, 40_000)
            position += accepted
            data: dict[str, Any] = {
                "session_id": sid,
                "watched_ms": accepted or 99_999,
                "position_ms": position,
                "visible_fraction": 1.0,
                "source": source,
                "platform": platform,
                "final": False,
            }
            self.maybe(data, "accepted_ms", accepted)
            self.maybe(data, "region", region)
            eid = view_event_id(cid, sid, f"{viewer}/#{seq}")
            self.events.append(EngagementEvent(eid, RAW_VIEW, cid, viewer, t, {}, None, data))
            if seq == 0 and rng.random() < 0.75:
                view = {"session_id": sid, "platform": platform, "source": source}
                self.maybe(view, "region", region)
                self.events.append(
                    EngagementEvent(
                        view_event_id(cid, sid, viewer),
                        VIEW,
                        cid,
                        viewer,
                        t,
                        {"views": 1},
                        viewer,
                        view,
                    )
                )
        if rng.random() < 0.8:
            end = {
                "session_id": sid,
                "position_ms": None if rng.random() < 0.1 else position * rng.choice([1, 2]),
                "duration_ms": duration,
                "watched_ms": position,
                "platform": platform,
                "source": source,
                "region": region,
                "counted": True,
                "reason": rng.choice(["final", "idle"]),
            }
            eid = view_end_event_id(cid, sid, viewer)
            self.events.append(EngagementEvent(eid, VIEW_END, cid, viewer, t, {}, None, end))

    def reactions(self, cid: str, user: str) -> None:
        rng = self.rng
        state: ReactionType | None = None
        t = self.moment()
        for version in range(1, rng.randint(2, 5)):
            wanted = rng.choice([None, *ReactionType]) if state else rng.choice(list(ReactionType))
            if wanted == state:
                continue
            step = transition(state, wanted)
            data: dict[str, Any] = {"before": state, "after": wanted}
            self.maybe(data, "region", rng.choice(REGIONS), missing=0.2)
            self.events.append(
                EngagementEvent(
                    reaction_event_id(cid, user, version),
                    REACTION,
                    cid,
                    user,
                    t,
                    step.deltas,
                    None,
                    data,
                )
            )
            state = wanted
            t = self.moment(t, 3600)

    def build(self) -> list[EngagementEvent]:
        viewers = [f"u:user{i}" for i in range(150)] + [f"d:dev{i}" for i in range(250)]
        n = 0
        for cid, _, _, duration, sessions in CONTENTS:
            for _ in range(sessions):
                n += 1
                self.session(cid, duration, n, viewers)
            for user in self.rng.sample(range(150), 40):
                self.reactions(cid, f"user{user}")
        # A busy hour of a1: well over 100 distinct viewers in its buckets.
        burst = ms_of(NOW - timedelta(hours=30))
        for _ in range(180):
            n += 1
            self.session("a1", 600_000, n, viewers, burst)
        return self.events


def deliveries(
    events: list[EngagementEvent], keys: Keys, rng: random.Random, first_msg: int
) -> list[Delivery]:
    by_partition: dict[int, list[EngagementEvent]] = {}
    for e in events:
        by_partition.setdefault(keys.partition(e.content_id), []).append(e)
    out = []
    msg = first_msg
    for partition, evs in by_partition.items():
        rng.shuffle(evs)
        while evs:
            size = rng.randint(1, 40)
            chunk, evs = evs[:size], evs[size:]
            rest = tuple(e for e in chunk if e.kind != RAW_VIEW)
            raws = [e.to_dict() for e in chunk if e.kind == RAW_VIEW]
            encoded = orjson.dumps(raws) if raws else None
            out.append(Delivery(partition, f"{msg}-0", rest, encoded, len(raws)))
            msg += 1
    return out


def normalized(value: Any) -> Any:
    """A counter at 0 and an absent one are the same; the guard and the version
    (unique per write) are bookkeeping."""
    if isinstance(value, dict):
        out = {k: normalized(v) for k, v in value.items() if k not in ("seen", "v")}
        return {k: v for k, v in out.items() if v != 0 and v != {}}
    return value


async def snapshot(db: Any, redis: Any, keys: Keys) -> tuple[dict, dict]:
    rollups: dict[tuple[str, str], Any] = {}
    for name in [*COLLECTIONS.values(), FIRSTS]:
        async for doc in db[name].find():
            rollups[(name, doc["_id"])] = normalized(doc)
    sketches: dict[str, Any] = {}
    async for key in redis.scan_iter(match=keys.analytics_prefix() + "*", count=1000):
        kind = await redis.type(key)
        if kind == "set":
            sketches[key] = sorted(await redis.smembers(key))
        elif key.endswith(":hll"):
            sketches[key] = await redis.pfcount(key)
        else:
            sketches[key] = await redis.get(key)
    return rollups, sketches


def schedule(
    events: list[EngagementEvent], keys: Keys, rng: random.Random
) -> Iterator[list[Delivery]]:
    """Batches of deliveries: shuffled, some delivered twice, some events replayed
    in new deliveries."""
    plan = deliveries(events, keys, rng, 1)
    replayed = [e for e in events if rng.random() < (0.05 if e.kind == RAW_VIEW else 0.2)]
    plan += deliveries(replayed, keys, rng, 100_000)
    rng.shuffle(plan)
    for d in rng.sample(plan, len(plan) // 5):
        plan.insert(rng.randrange(plan.index(d), len(plan) + 1), d)
    i = 0
    while i < len(plan):
        n = rng.randint(1, 25)
        yield plan[i : i + n]
        i += n


@pytest.fixture
async def world(runtime, deps, mongo_db, app_redis):
    keys = runtime.services.keys
    for cid, creator, kind, duration, _ in CONTENTS:
        await deps.contents.insert(Content(cid, creator, kind, NOW - timedelta(days=6), duration))
    events = Stream(20261130).build()
    rng = random.Random(7)
    rollups = MongoAnalytics(mongo_db)
    sketches = RedisAnalytics(app_redis, keys, 3_600_000)
    worker = AnalyticsWorker(FakeConsumer(), deps.contents, rollups, sketches, sketches)
    crashing = AnalyticsWorker(
        FakeConsumer(), deps.contents, rollups, sketches, CrashOnce(sketches)
    )
    for n, batch in enumerate(schedule(events, keys, rng)):
        if n == 7:
            with pytest.raises(ConnectionError):
                await crashing.process(batch)
        await worker.process(batch)
    # The archive: each event once, raw view events in batches, some of them in
    # two (a batch handed over again in another grouping is stored again).
    archive = MongoEventArchive(mongo_db)
    await archive.store([e for e in events if e.kind != RAW_VIEW])
    raw = [e.to_dict() for e in events if e.kind == RAW_VIEW]
    for i in range(0, len(raw), 300):
        await archive.store_raw_views(raw[i : i + 300])
        await archive.store_raw_views(raw[i + 150 : i + 450])
    return events, keys


async def test_a_rebuild_gives_back_exactly_what_the_worker_built(deps, mongo_db, app_redis, world):
    events, keys = world
    built = await snapshot(mongo_db, app_redis, keys)

    # Each event counted once: the content day buckets sum to the events' counters.
    expected: dict[str, dict[str, int]] = {}
    for e in events:
        add_counters(expected.setdefault(e.content_id, {}), event_counters(e))
    summed: dict[str, dict[str, int]] = {}
    async for doc in mongo_db[COLLECTIONS[Granularity.DAY]].find({"scope": {"$regex": "^c:"}}):
        add_counters(summed.setdefault(doc["scope"][2:], {}), flatten(doc))
    assert normalized(summed) == normalized(expected)
    # The stream has what it should: overflowed buckets (over 100 distinct viewers),
    # minute sketches only where they are kept, completions, several days.
    rollups, sketches = built
    assert any(k.endswith(":over") for k in sketches)
    assert any(k.endswith(":set") and ":MINUTE:" in k for k in sketches)
    assert not any(
        ":MINUTE:" in k and int(k.rsplit(":", 2)[-2]) < ms_of(MINUTE_EDGE) - 60_000
        for k in sketches
    )
    days = {
        k[1]
        for k in rollups
        if k[0] == COLLECTIONS[Granularity.DAY] and k[1].startswith("u:alice|")
    }
    assert len(days) >= 5
    assert expected["a1"]["completion.n"] > 0 and "completion.n" not in expected["a3"]

    # Every archived event once, though some raw view events are archived twice.
    assert await rebuild(mongo_db, app_redis, keys, deps.contents) == len(events)
    assert await snapshot(mongo_db, app_redis, keys) == built


async def test_a_rebuild_of_one_content_or_since_a_day(deps, mongo_db, app_redis, world):
    _, keys = world
    built = await snapshot(mongo_db, app_redis, keys)
    day = COLLECTIONS[Granularity.DAY]

    # Damage a1, alice's totals and a2's first like; a rebuild of a1 repairs a1 and
    # alice, and leaves the rest (a2's first like stays wrong: not a1's).
    await mongo_db[day].update_many({"scope": {"$in": ["c:a1", "u:alice"]}}, {"$inc": {"views": 5}})
    await mongo_db[COLLECTIONS[Granularity.MINUTE]].delete_many({"scope": "c:a1"})
    await mongo_db[FIRSTS].update_one({"_id": "a1"}, {"$set": {"first_like_ms": 1}})
    await mongo_db[FIRSTS].update_one({"_id": "a2"}, {"$set": {"first_like_ms": 2}})
    await app_redis.delete(
        *[k async for k in app_redis.scan_iter(match=keys.analytics_scope_prefix("c:a1") + "*")]
    )
    await rebuild(mongo_db, app_redis, keys, deps.contents, content_id="a1")
    now = await snapshot(mongo_db, app_redis, keys)
    assert now[1] == built[1]
    assert {k: v for k, v in now[0].items() if k != (FIRSTS, "a2")} == {
        k: v for k, v in built[0].items() if k != (FIRSTS, "a2")
    }
    assert now[0][(FIRSTS, "a2")]["first_like_ms"] == 2
    await mongo_db[FIRSTS].update_one(
        {"_id": "a2"}, {"$set": {"first_like_ms": built[0][(FIRSTS, "a2")]["first_like_ms"]}}
    )

    # Since a day (given at +09:00, floored to the UTC day): buckets before it are
    # left alone, damaged or not; from it on, all rebuilt.
    since = (NOW - timedelta(days=2)).astimezone(OFFSETS[3])
    cut = bucket_start(ms_of(since), Granularity.DAY)
    for name in COLLECTIONS.values():
        await mongo_db[name].update_many({}, {"$inc": {"likes_added": 1}})
    await app_redis.sadd(keys.analytics_sketch("u:bob", "DAY", cut, "v")[0], "intruder")
    before_cut = keys.analytics_sketch("u:bob", "DAY", cut - DAY_MS, "r")[0]
    await app_redis.sadd(before_cut, "intruder")
    await rebuild(mongo_db, app_redis, keys, deps.contents, since=since)
    rollups, sketches = await snapshot(mongo_db, app_redis, keys)
    for key, doc in built[0].items():
        if key[0] == FIRSTS:
            assert rollups[key] == doc
        elif doc["start"] >= at_ms(cut):
            assert rollups[key] == doc, key
        else:
            assert rollups[key]["likes_added"] == doc.get("likes_added", 0) + 1, key
    assert set(rollups) == set(built[0])
    assert {k: v for k, v in sketches.items() if k != before_cut} == {
        k: v for k, v in built[1].items() if k != before_cut
    }
    assert "intruder" in sketches[before_cut]


async def test_rebuild_refuses_what_it_cannot_do(deps, mongo_db, app_redis, runtime):
    keys = runtime.services.keys
    with pytest.raises(ContentNotFound):
        await rebuild(mongo_db, app_redis, keys, deps.contents, content_id="nope")
    with pytest.raises(ValueError, match="timezone"):
        await rebuild(mongo_db, app_redis, keys, deps.contents, since=datetime(2026, 1, 1))


async def test_the_workers_backlog_is_left_to_the_worker(deps, mongo_db, app_redis, runtime):
    keys = runtime.services.keys
    await deps.contents.insert(Content("x1", "carol", ContentKind.POST, NOW, None))
    at = ms_of(NOW - timedelta(hours=3))

    def view(viewer: str) -> EngagementEvent:
        data = {"session_id": viewer}
        return EngagementEvent(f"v-{viewer}", VIEW, "x1", viewer, at, {"views": 1}, viewer, data)

    applied, backlog, old = view("d:applied"), view("d:backlog"), view("d:old")
    sketches = RedisAnalytics(app_redis, keys, 3_600_000)
    worker = AnalyticsWorker(
        FakeConsumer(), deps.contents, MongoAnalytics(mongo_db), sketches, sketches
    )
    await worker.process([Delivery(0, "1-0", (applied,))])
    archive = MongoEventArchive(mongo_db)
    await archive.store([applied, backlog, old])
    # Archived two hours ago, beyond the horizon: applied long ago, whatever the
    # applied set (which forgets) says.
    await mongo_db["events"].update_one(
        {"_id": old.event_id}, {"$set": {"archived_at": datetime.now(UTC) - timedelta(hours=2)}}
    )
    assert await rebuild(mongo_db, app_redis, keys, deps.contents) == 2
    day_id = f"c:x1|{bucket_start(at, Granularity.DAY)}"
    doc = await mongo_db[COLLECTIONS[Granularity.DAY]].find_one({"_id": day_id})
    assert doc["views"] == 2
    # The worker gets to its backlog (and the first one again): each counted once.
    await worker.process([Delivery(0, "2-0", (backlog, applied))])
    doc = await mongo_db[COLLECTIONS[Granularity.DAY]].find_one({"_id": day_id})
    assert doc["views"] == 3
