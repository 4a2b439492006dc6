"""Trending rebuilt from the archive equals what the worker kept incrementally: the
same lists in the same order, the same scores (1e-9), the same signals."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from domain.analytics import ms_of
from domain.signals import MINUTE_MS, RING_MINUTES, RawSignals, compute
from domain.trending import WINDOWS, TrendWindow, current_heat, prune_below
from storage.mongo_events import MongoEventArchive
from storage.redis_trending import TopQuery
from tests.integration.doubles import T0, FakeClock
from tests.integration.test_trending_worker import (
    KINDS,
    SET_KINDS,
    SET_REGIONS,
    T0_MS,
    FakeContents,
    as_repository,
    deliver,
    react,
    simulate,
    store,  # noqa: F401 (a fixture)
    watched,
    worker_of,
)
from workers.trending_rebuild import HORIZON, rebuild

QUERIES = [TopQuery(w, k, r, 100) for w in TrendWindow for k in SET_KINDS for r in SET_REGIONS]


async def test_rebuild_equals_the_incremental_lists(store, mongo_db, redis_client):  # noqa: F811
    end = T0_MS + 36 * 3_600_000
    events = simulate(3, end)
    # Older than the horizon: only lifetime watch time and reactors come back from
    # these (a switch of reaction weighs nothing in the trend sums).
    old = T0_MS - 20 * 86_400_000
    events = [
        watched("big", old, "d:old", 7_000),
        react("big", old, "u:old", 2, "LIKE", "LOVE", "US"),
        *events,
    ]
    await MongoEventArchive(mongo_db).store(events)
    clock = FakeClock(T0)
    await deliver(worker_of(store, clock), clock, events, 3)
    now_ms = ms_of(clock.now())
    lists = await store.tops(QUERIES)
    raw = await store.raw_signals(list(KINDS))
    assert sum(map(bool, lists)) > 30

    assert await store.flush() > 0
    assert await store.tops(QUERIES) == [[] for _ in QUERIES]
    assert (await store.raw_signals(["big"]))["big"].watch_ms == 0

    n = await rebuild(mongo_db, store, as_repository(FakeContents(KINDS)), clock)
    assert n == len({e.event_id for e in events})
    for q, was, now in zip(QUERIES, lists, await store.tops(QUERIES), strict=True):
        spec = WINDOWS[q.window]
        # A member that decayed under MIN_HEAT stays until its set is next
        # written: the rebuild, writing every set at the end, has pruned it.
        floor = prune_below(now_ms, spec)
        before, after = [r for r in was if r.frame >= floor], [r for r in now if r.frame >= floor]
        assert [r.content_id for r in after] == [r.content_id for r in before], q
        for a, b in zip(after, before, strict=True):
            assert current_heat(a.frame, now_ms, spec) == pytest.approx(
                current_heat(b.frame, now_ms, spec), rel=1e-9, abs=0
            )
    rebuilt = await store.raw_signals(list(KINDS))
    oldest = now_ms // MINUTE_MS - RING_MINUTES + 1

    def held(r: RawSignals) -> RawSignals:
        # Slots keep a minute from an earlier turn of the ring until it comes round
        # again (reads ignore it); the rebuild writes the last turn only.
        minutes = {m: c for m, c in sorted(r.minutes.items()) if m >= oldest}
        return dataclasses.replace(r, minutes=minutes, updated_at_ms=None)

    for cid in KINDS:
        assert held(rebuilt[cid]) == held(raw[cid])
        assert compute(cid, held(rebuilt[cid]), now_ms) == compute(cid, held(raw[cid]), now_ms)
    assert rebuilt["big"].reacting_viewers == 0  # no uniques here: nothing to intersect
    assert rebuilt["big"].watch_ms >= 7_000


def test_the_horizon_is_twice_days_baseline() -> None:
    assert timedelta(days=14) == HORIZON
    assert HORIZON.total_seconds() == 2 * WINDOWS[TrendWindow.DAY].baseline_s
