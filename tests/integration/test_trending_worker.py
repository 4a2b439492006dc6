"""The trending worker on a real Redis: the incremental lists equal a recompute from
the unique events (a seeded simulation with redeliveries, replays and events out of
order), a rising content tops the list within a minute, a crash before the
acknowledgement is harmless, the signals, their stream, and the live lists."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import orjson
import pytest

from domain.analytics import ms_of
from domain.contents import Content, ContentKind
from domain.events import RAW_VIEW, REACTION, VIEW, EngagementEvent
from domain.log import Delivery
from domain.ports import ContentRepository
from domain.signals import MINUTE_MS, compute
from domain.trending import (
    ALL_KINDS,
    ALL_REGIONS,
    WINDOWS,
    SetKey,
    TrendWindow,
    brute_force,
    current_heat,
    prune_below,
    rank,
)
from storage.redis_trending import RedisTrending, TopQuery
from tests.integration.doubles import T0, FakeClock, FakeConsumer
from workers.trending import TrendingWorker

T0_MS = ms_of(T0)
KINDS = {
    "big": "VIDEO",
    "small": "SHORT",
    "yesterday": "POST",
    "fickle": "VIDEO",
    "n0": "SHORT",
    "n1": "POST",
    "n2": "VIDEO",
}
REGIONS = ["US", "FR", "BR", None]
SET_KINDS = [*sorted(set(KINDS.values())), ALL_KINDS]
SET_REGIONS = ["US", "FR", "BR", "unknown", ALL_REGIONS]


# --- events -------------------------------------------------------------------------


def view(cid: str, ms: int, viewer: str, region: str | None) -> EngagementEvent:
    return EngagementEvent(
        f"v-{cid}-{viewer}-{ms}",
        VIEW,
        cid,
        viewer,
        ms,
        {"views": 1},
        viewer,
        {"region": region},
    )


def react(
    cid: str, ms: int, user: str, version: int, before: str | None, after: str | None, region: Any
) -> EngagementEvent:
    return EngagementEvent(
        f"r-{cid}-{user}-{version}",
        REACTION,
        cid,
        user,
        ms,
        {"likes": (after is not None) - (before is not None)},
        None,
        {"before": before, "after": after, "region": region},
    )


def watched(cid: str, ms: int, viewer: str, accepted: int) -> EngagementEvent:
    return EngagementEvent(
        f"w-{cid}-{viewer}-{ms}", RAW_VIEW, cid, viewer, ms, {}, None, {"accepted_ms": accepted}
    )


def simulate(seed: int, end_ms: int) -> list[EngagementEvent]:
    """About 36 hours of a steady big content, a small one that takes off in the
    last 20 minutes, one that spiked yesterday, bursts of unlikes, some noise, and
    raw view events beside some views."""
    rng = random.Random(seed)
    start = end_ms - 36 * 3_600_000
    out: list[EngagementEvent] = []
    n = 0

    def views(cid: str, at: Iterable[int]) -> None:
        nonlocal n
        for ms in at:
            n += 1
            viewer = f"d:{n}"
            out.append(view(cid, ms, viewer, rng.choice(REGIONS)))
            if rng.random() < 0.3:
                out.append(watched(cid, ms, viewer, rng.randrange(0, 60_000)))

    def likes(cid: str, at: Iterable[int], unlike_after_ms: int | None = None) -> None:
        nonlocal n
        for ms in at:
            n += 1
            user, region = f"u{n}", rng.choice(REGIONS)
            out.append(react(cid, ms, user, 1, None, "LIKE", region))
            if rng.random() < 0.2:
                out.append(react(cid, ms + 1_000, user, 2, "LIKE", "LOVE", region))
            if unlike_after_ms is not None and rng.random() < 0.8:
                later = ms + rng.randrange(1_000, unlike_after_ms)
                out.append(react(cid, later, user, 3, "LIKE", None, region))

    def spread(count: int, lo: int, hi: int) -> list[int]:
        return sorted(rng.randrange(lo, hi) for _ in range(count))

    views("big", range(start, end_ms, 90_000))
    likes("big", spread(120, start, end_ms))
    views("small", spread(20, start, end_ms - 1_200_000))
    views("small", spread(80, end_ms - 1_200_000, end_ms))
    likes("small", spread(25, end_ms - 1_200_000, end_ms))
    views("yesterday", spread(300, end_ms - 25 * 3_600_000, end_ms - 24 * 3_600_000))
    likes("yesterday", spread(60, end_ms - 25 * 3_600_000, end_ms - 24 * 3_600_000))
    likes("fickle", spread(30, end_ms - 3 * 3_600_000, end_ms - 2 * 3_600_000), 600_000)
    likes("fickle", spread(20, end_ms - 1_800_000, end_ms - 600_000), 300_000)
    for cid in ("n0", "n1", "n2"):
        views(cid, spread(60, start, end_ms))
        likes(cid, spread(8, start, end_ms))
    out.sort(key=lambda e: (e.occurred_at_ms, e.event_id))
    return out


# --- delivery -----------------------------------------------------------------------


def delivery(msg: str, events: Sequence[EngagementEvent]) -> Delivery:
    rest = tuple(e for e in events if e.kind != RAW_VIEW)
    raws = [e.to_dict() for e in events if e.kind == RAW_VIEW]
    return Delivery(0, msg, rest, orjson.dumps(raws) if raws else None, len(raws))


@dataclass
class Publisher:
    sent: list[dict[str, str]] = field(default_factory=list)

    async def publish(self, messages: Mapping[str, str]) -> None:
        self.sent.append(dict(messages))


class FakeContents:
    def __init__(self, kinds: Mapping[str, str]) -> None:
        self._c = {
            cid: Content(cid, "creator", ContentKind(kind), T0, None) for cid, kind in kinds.items()
        }
        self.asked: list[list[str]] = []

    async def get_many(self, content_ids: Sequence[str]) -> dict[str, Content]:
        self.asked.append(list(content_ids))
        return {c: self._c[c] for c in content_ids if c in self._c}


@pytest.fixture
async def store(redis_client) -> RedisTrending:
    from storage.keys import Keys

    s = RedisTrending(redis_client, Keys(), 7 * 86_400_000)
    await s.load_scripts()
    return s


def worker_of(store: RedisTrending, clock: FakeClock, **kw: Any) -> TrendingWorker:
    consumer = kw.pop("consumer", None) or FakeConsumer()
    publisher = kw.pop("publisher", None) or Publisher()
    contents = kw.pop("contents", None) or FakeContents(KINDS)
    return TrendingWorker(consumer, as_repository(contents), store, publisher, clock, **kw)


def as_repository(contents: FakeContents) -> ContentRepository:
    return cast(ContentRepository, contents)


async def deliver(
    worker: TrendingWorker, clock: FakeClock, events: list[EngagementEvent], seed: int
) -> None:
    """The events in batches, the clock a second after each batch's newest event;
    some events held back a few batches (out of order), some batches redelivered
    (the same entries) and some replayed (the same events in new entries)."""
    rng = random.Random(seed)
    batches: list[list[EngagementEvent]] = []
    i = 0
    while i < len(events):
        size = rng.randrange(20, 80)
        batches.append(events[i : i + size])
        i += size
    held: list[tuple[int, EngagementEvent]] = []
    for b in range(len(batches)):
        batch = []
        for e in batches[b]:
            if e.kind != RAW_VIEW and rng.random() < 0.05 and b + 3 < len(batches):
                held.append((b + rng.randrange(1, 4), e))
            else:
                batch.append(e)
        batch += [e for at, e in held if at == b]
        held = [(at, e) for at, e in held if at != b]
        batches[b] = batch
    sent: list[Delivery] = []
    for b, batch in enumerate(batches):
        newest = max(e.occurred_at_ms for e in batch)
        clock.at = max(clock.at, T0 + timedelta(milliseconds=newest - T0_MS + 1_000))
        # Raw view events and the rest travel in separate entries, as recordViews
        # appends them.
        raws = [e for e in batch if e.kind == RAW_VIEW]
        rest = [e for e in batch if e.kind != RAW_VIEW]
        now = [delivery(f"{b}-0", rest), delivery(f"{b}-1", raws)]
        if b % 7 == 3 and sent:
            now += sent[-2:]  # redelivered: the same entries again
        if b % 11 == 5 and b > 2:
            old = [e for e in batches[b - 2] if e.kind != RAW_VIEW]
            now.append(delivery(f"{b}-9", old))  # replayed: the same events again
        await worker.process(now)
        sent += now[:2]


def heat_now(frame: float, now_ms: int, window: TrendWindow) -> float:
    return current_heat(frame, now_ms, WINDOWS[window])


async def assert_lists_equal_brute_force(
    store: RedisTrending, events: Sequence[EngagementEvent], now_ms: int
) -> int:
    """Every (window, kind, region) list equals the recompute, rank for rank; members
    whose heat decayed under MIN_HEAT by now are left out of both (the store prunes
    them when a set is next written). Returns how many lists were compared."""
    unique = list({e.event_id: e for e in events}.values())
    expected = brute_force(unique, KINDS)
    queries = [TopQuery(w, k, r, 100) for w in TrendWindow for k in SET_KINDS for r in SET_REGIONS]
    nonempty = 0
    for q, got in zip(queries, await store.tops(queries), strict=True):
        floor = prune_below(now_ms, WINDOWS[q.window])
        scores = expected.get(SetKey(q.window, q.kind, q.region), {})
        want = rank({c: s for c, s in scores.items() if s >= floor}, 100)
        have = [r for r in got if r.frame >= floor]
        assert [r.content_id for r in have] == [r.content_id for r in want], q
        for h, w in zip(have, want, strict=True):
            assert heat_now(h.frame, now_ms, q.window) == pytest.approx(
                heat_now(w.frame, now_ms, q.window), rel=1e-9, abs=0
            )
        nonempty += bool(want)
    return nonempty


# --- the simulation -----------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
async def test_incremental_lists_equal_the_recompute(store, seed):
    end = T0_MS + 36 * 3_600_000
    events = simulate(seed, end)
    clock = FakeClock(T0)
    worker = worker_of(store, clock)
    await deliver(worker, clock, events, seed)
    now_ms = ms_of(clock.now())
    assert await assert_lists_equal_brute_force(store, events, now_ms) > 30
    # What the simulation is about, as the lists show it.
    five = await store.top(TrendWindow.FIVE_MINUTES, ALL_KINDS, ALL_REGIONS, 3)
    hour = await store.top(TrendWindow.HOUR, ALL_KINDS, ALL_REGIONS, 10)
    day = await store.top(TrendWindow.DAY, "POST", ALL_REGIONS, 1)
    assert five[0].content_id == "small"
    assert hour[0].content_id == "small"
    assert day[0].content_id == "yesterday"
    # Lifetime watch time: each raw view event once, redelivered or not.
    raw = await store.raw_signals(list(KINDS))
    for cid in KINDS:
        accepted = {
            e.event_id: e.data["accepted_ms"]
            for e in events
            if e.kind == RAW_VIEW and e.content_id == cid
        }
        assert raw[cid].watch_ms == sum(accepted.values())


async def test_a_rising_content_tops_the_list_within_a_minute(store):
    clock = FakeClock(T0)
    worker = worker_of(store, clock)
    start = T0_MS - 3 * 86_400_000
    # Three days of a steady big content (2 views a minute) and a trickle on the
    # small one (a view an hour), delivered an hour at a time.
    history = [view("big", t, f"d:{t}", "US") for t in range(start, T0_MS, 30_000)]
    history += [view("small", t, f"s:{t}", "FR") for t in range(start, T0_MS, 3_600_000)]
    history.sort(key=lambda e: e.occurred_at_ms)
    for h in range(72):
        lo = start + h * 3_600_000
        hour = [e for e in history if lo <= e.occurred_at_ms < lo + 3_600_000]
        clock.at = T0 + timedelta(milliseconds=lo + 3_600_000 - T0_MS)
        await worker.process([delivery(f"h{h}", hour)])
    for window in (TrendWindow.FIVE_MINUTES, TrendWindow.HOUR):
        top = await store.top(window, ALL_KINDS, ALL_REGIONS, 1)
        assert [r.content_id for r in top] == ["big"], window
    # The small content takes off: 5 likes and 5 views every 10 s; the big one goes on.
    first_at: dict[TrendWindow, int] = {}
    for step in range(1, 7):
        at = T0_MS + step * 10_000
        events = [
            react("small", at - i * 1_000, f"f{step}-{i}", 1, None, "LIKE", "FR") for i in range(5)
        ]
        events += [view("small", at - i * 1_500, f"v{step}-{i}", "FR") for i in range(5)]
        events.append(view("big", at - 5_000, f"d:{at}", "US"))
        clock.at = T0 + timedelta(milliseconds=at - T0_MS)
        await worker.process([delivery(f"s{step}", events)])
        for window in (TrendWindow.FIVE_MINUTES, TrendWindow.HOUR):
            top = await store.top(window, ALL_KINDS, ALL_REGIONS, 2)
            if top[0].content_id == "small":
                first_at.setdefault(window, step * 10)
    assert set(first_at) == {TrendWindow.FIVE_MINUTES, TrendWindow.HOUR}
    assert max(first_at.values()) <= 60


# --- effectively once ---------------------------------------------------------------


class CrashOnAck(FakeConsumer):
    """The worker dies after the write and before the acknowledgement, once."""

    def __init__(self) -> None:
        super().__init__()
        self.crashed = False

    async def ack(self, deliveries: Any) -> None:
        if not self.crashed:
            self.crashed = True
            raise ConnectionError("the worker died between the write and the ack")
        await super().ack(deliveries)


async def snapshot(redis_client) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(await redis_client.keys("*")):
        kind = (await redis_client.type(key)).decode()
        if key.endswith(b"tr-applied") or key.endswith(b":signals"):
            continue
        if kind == "hash":
            out[key.decode()] = await redis_client.hgetall(key)
        elif kind == "zset":
            out[key.decode()] = await redis_client.zrange(key, 0, -1, withscores=True)
        else:
            out[key.decode()] = await redis_client.dump(key)
    return out


async def test_a_crash_between_apply_and_ack_changes_nothing(store, redis_client):
    clock = FakeClock(T0)
    events = [
        view("small", T0_MS - 5_000, "d:1", "US"),
        react("small", T0_MS - 4_000, "u1", 1, None, "LIKE", "US"),
        react("big", T0_MS - 3_000, "u2", 1, None, "LIKE", None),
        watched("small", T0_MS - 5_000, "d:1", 4_000),
    ]
    batch = [delivery("1-0", events[:3]), delivery("1-1", events[3:])]
    consumer = CrashOnAck()
    worker = worker_of(store, clock, consumer=consumer)
    with pytest.raises(ConnectionError):
        await worker.process(batch)
    assert consumer.acked == []
    written = await snapshot(redis_client)
    assert written
    clock.advance(seconds=5)
    # Redelivered, to this worker or another: refused whole, then acknowledged.
    assert await worker.process(batch) == 0
    assert await worker_of(store, clock).process(batch) == 0
    assert consumer.acked == batch
    after = await snapshot(redis_client)
    assert after == written
    # One new event beside them is applied alone.
    again = [*batch, delivery("2-0", [view("small", T0_MS, "d:2", "US")])]
    assert await worker.process(again) == 1


async def test_unknown_contents_are_skipped(store):
    clock = FakeClock(T0)
    contents = FakeContents({"big": "VIDEO"})
    worker = worker_of(store, clock, contents=contents)
    batch = [delivery("1-0", [view("big", T0_MS, "d:1", "US"), view("ghost", T0_MS, "d:2", "US")])]
    assert await worker.process(batch) == 1
    assert await worker.process([delivery("2-0", [view("big", T0_MS, "d:3", "US")])]) == 1
    # A known content's kind is asked once.
    assert contents.asked == [["big", "ghost"]]
    top = await store.top(TrendWindow.HOUR, ALL_KINDS, ALL_REGIONS, 5)
    assert [r.content_id for r in top] == ["big"]


# --- signals --------------------------------------------------------------------------


async def test_raw_signals_and_compute_after_known_events(store, redis_client):
    keys = store.keys
    minute = T0_MS // MINUTE_MS
    now = T0_MS + 30_000
    clock = FakeClock(T0 + timedelta(seconds=30))
    events = [
        *(view("c1", T0_MS - 2 * MINUTE_MS + i, f"d:{i}", "US") for i in range(3)),
        react("c1", T0_MS - MINUTE_MS, "a", 1, None, "LIKE", "US"),
        react("c1", T0_MS - MINUTE_MS + 5, "b", 1, None, "LIKE", "US"),
        react("c1", T0_MS - MINUTE_MS + 9, "b", 2, "LIKE", "LOVE", "US"),
        *(view("c1", T0_MS + i, f"e:{i}", "US") for i in range(6)),
        watched("c1", T0_MS, "d:0", 1_000),
        watched("c1", T0_MS + 1, "d:1", 2_000),
    ]
    # The aggregator's counters and unique viewers, which the signals read too.
    await redis_client.hset(keys.counters("c1"), mapping={"likes": 4, "views": 10})
    await redis_client.pfadd(keys.uniques("c1"), "u:a", "u:b", "d:x")
    worker = worker_of(store, clock, contents=FakeContents({"c1": "VIDEO"}))
    await worker.process([delivery("1-0", events)])
    raw = await store.raw_signals(["c1", "never"])
    r = raw["c1"]
    assert {m: (c.views, c.likes) for m, c in r.minutes.items()} == {
        minute - 2: (3, 0),
        minute - 1: (0, 2),
        minute: (6, 0),
    }
    assert (r.likes, r.views, r.unique_viewers, r.reacting_viewers, r.watch_ms) == (
        4,
        10,
        3,
        2,
        3_000,
    )
    assert r.updated_at_ms == now
    assert raw["never"].minutes == {} and raw["never"].updated_at_ms is None
    s = compute("c1", r, now)
    assert (s.views_per_minute.one_minute, s.views_per_minute.fifteen_minutes) == (6.0, 9 / 15)
    assert s.likes_per_minute.one_minute == pytest.approx(1.0)
    assert s.growth_slope == pytest.approx(6 * 3 / 280)
    assert s.velocity_ratio is None
    assert s.engagement_ratio == pytest.approx(0.4)
    assert s.view_to_like_conversion == pytest.approx(2 / 3)
    assert s.average_watch_ms == pytest.approx(300.0)

    # The worker appended the signals to the content's partition's stream.
    entries = await redis_client.xrange(keys.signals_stream(keys.partition("c1")))
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields[b"content_id"] == b"c1"
    published = orjson.loads(fields[b"signals"])
    assert published["contentId"] == "c1"
    assert published["viewsPerMinute"]["oneMinute"] == 6.0
    assert published["uniqueViewers"] == 3
    assert published["updatedAt"] == now
    assert set(published) == {
        "contentId",
        "likesPerMinute",
        "viewsPerMinute",
        "growthSlope",
        "velocityRatio",
        "engagementRatio",
        "viewToLikeConversion",
        "uniqueViewers",
        "averageWatchMs",
        "updatedAt",
    }


async def test_the_ring_keeps_one_minute_per_slot(store):
    keys = store.keys
    p = keys.partition("c1")
    m = T0_MS // MINUTE_MS
    late = {"c1": _minutes({m - 70: [5, 0]})}  # a slot's previous turn: not kept
    now = {"c1": _minutes({m: [2, 1]})}
    assert await store.apply(p, ["a"], T0_MS, now, {}, {}) is None
    assert await store.apply(p, ["b"], T0_MS, late, {}, {}) is None
    assert await store.apply(p, ["c"], T0_MS, now, {}, {}) is None
    r = (await store.raw_signals(["c1"]))["c1"]
    assert {k: (v.views, v.likes) for k, v in r.minutes.items()} == {m: (4, 2)}
    # 70 minutes on, the same slot starts again from zero.
    later = T0_MS + 70 * MINUTE_MS
    assert await store.apply(p, ["d"], later, {"c1": _minutes({m + 70: [1, 0]})}, {}, {}) is None
    r = (await store.raw_signals(["c1"]))["c1"]
    assert r.minutes[m + 70].views == 1 and m not in r.minutes
    # A token applied before refuses the whole call and is named.
    assert await store.apply(p, ["e", "a", "c"], later, now, {}, {}) == ["a", "c"]


def _minutes(m: dict[int, list[int]]) -> Any:
    from domain.signals import ContentDelta

    return ContentDelta({k: list(v) for k, v in m.items()})


# --- live lists -----------------------------------------------------------------------


async def test_lists_are_published_on_change_at_most_once_a_second(store):
    clock = FakeClock(T0)
    publisher = Publisher()
    worker = worker_of(store, clock, publisher=publisher, publish_interval_s=1.0)
    channel = store.keys.trend_channel("5m", ALL_KINDS)

    def likes(cid: str, n: int, tag: str) -> Delivery:
        at = ms_of(clock.now())
        return delivery(
            tag, [react(cid, at, f"{tag}-{i}", 1, None, "LIKE", "US") for i in range(n)]
        )

    def on_channel() -> list[list[str]]:
        return [
            [pair[0] for pair in orjson.loads(m[channel])] for m in publisher.sent if channel in m
        ]

    await worker.process([likes("big", 3, "a")])
    assert publisher.sent[0].keys() == {
        store.keys.trend_channel(WINDOWS[w].code, k) for w in TrendWindow for k in ("VIDEO", "ALL")
    }
    assert on_channel() == [["big"]]
    # Within the second: the new order is held back (SHORT's lists, new, go out).
    clock.advance(seconds=0.5)
    await worker.process([likes("small", 6, "b")])
    await worker.tick()
    assert on_channel() == [["big"]]
    assert store.keys.trend_channel("5m", "SHORT") in publisher.sent[-1]
    # After it: tick() sends the held list.
    clock.advance(seconds=0.6)
    await worker.tick()
    assert on_channel() == [["big"], ["small", "big"]]
    # Scores moved, the order did not: nothing to say.
    sent = len(publisher.sent)
    clock.advance(seconds=5)
    await worker.process([likes("small", 1, "c")])
    await worker.tick()
    assert len(publisher.sent) == sent


async def test_a_batch_costs_a_few_round_trips(store, monkeypatch):
    from tests.integration.conftest import RoundTrips

    clock = FakeClock(T0)
    worker = worker_of(store, clock)
    events = [view(cid, T0_MS - i, f"d:{i}", "US") for i, cid in enumerate(KINDS)]
    events += [watched("big", T0_MS, "d:0", 1_000)]
    assert len({store.keys.partition(cid) for cid in KINDS}) > 1
    await worker.process([delivery("0-0", events[:1])])  # the scripts are loaded
    trips = RoundTrips(monkeypatch)
    await worker.process([delivery("1-0", events[:-1]), delivery("1-1", events[-1:])])
    # apply (every partition), signals read, signals stream, lists read, publish
    assert trips.count == 5
