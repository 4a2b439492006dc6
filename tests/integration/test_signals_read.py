"""The read script's sums (storage/redis_trending.py READ_SUMS) against
domain.signals.sums, the definition, on random rings in a real Redis: equal integer
for integer, so the signals computed from either are equal float for float."""

from __future__ import annotations

import random

import pytest

from domain.signals import (
    CUTS,
    MINUTE_MS,
    RING_MINUTES,
    ZERO_SUMS,
    ContentDelta,
    compute,
    from_sums,
    sums,
)
from storage.keys import Keys
from storage.redis_trending import RedisTrending

T0_MS = 1_790_000_000_000 - 1_790_000_000_000 % MINUTE_MS  # a minute's first ms


@pytest.fixture
async def store(redis_client) -> RedisTrending:
    s = RedisTrending(redis_client, Keys(), 7 * 86_400_000)
    await s.load_scripts()
    return s


async def _random_contents(
    store: RedisTrending, redis_client, rng: random.Random, written_at: int
) -> list[str]:
    """Contents with random minutes over the ring (empty, late and future minutes
    among them), lifetime counters, viewers and reactors, written as the worker
    writes them."""
    keys = store.keys
    ids = [f"r{i}" for i in range(12)]
    current = written_at // MINUTE_MS
    by_partition: dict[int, dict[str, ContentDelta]] = {}
    for n, cid in enumerate(ids):
        if n == 0:
            continue  # never written: reads as zeros
        delta = ContentDelta({}, watch_ms=rng.randrange(0, 10_000))
        for k in range(-1, RING_MINUTES + 3):
            if rng.random() < 0.6:
                delta.add_minute(current - k, rng.randrange(0, 500), rng.randrange(0, 40))
        if rng.random() < 0.8:
            delta.reactors = {f"u:{rng.randrange(50)}" for _ in range(rng.randrange(1, 20))}
        by_partition.setdefault(keys.partition(cid), {})[cid] = delta
        if rng.random() < 0.8:
            await redis_client.hset(
                keys.counters(cid),
                mapping={"likes": rng.randrange(0, 1000), "views": rng.randrange(0, 5000)},
            )
            viewers = [f"u:{rng.randrange(80)}" for _ in range(rng.randrange(1, 40))]
            await redis_client.pfadd(keys.uniques(cid), *viewers)
    for p, deltas in by_partition.items():
        assert await store.apply(p, [f"t{p}-{written_at}"], written_at, deltas, {}, {}) is None
    return ids


@pytest.mark.parametrize("seed", range(6))
async def test_the_script_sums_what_the_definition_sums(store, redis_client, seed):
    rng = random.Random(seed)
    written_at = T0_MS + rng.randrange(MINUTE_MS)
    ids = await _random_contents(store, redis_client, rng, written_at)
    raw = await store.raw_signals(ids)
    # Minute starts (the current minute then spreads nothing), inside a minute,
    # and later reads over which the windows slide.
    for now in (
        T0_MS,
        T0_MS + MINUTE_MS,
        written_at,
        written_at + 1,
        T0_MS + MINUTE_MS - 1,
        written_at + rng.randrange(1, 90 * MINUTE_MS),
    ):
        # Twice: the first read of a minute stores what the second one takes.
        for _ in range(2):
            got = await store.signal_sums([*ids, ids[3]], now)
            assert set(got) == set(ids)
            for cid in ids:
                assert got[cid] == sums(raw[cid], now), (cid, now)
                assert from_sums(cid, got[cid], now) == compute(cid, raw[cid], now)
    assert got["r0"] == ZERO_SUMS
    assert await store.signal_sums([], T0_MS) == {}


async def test_a_write_makes_the_stored_sums_stale(store, redis_client):
    keys = store.keys
    rng = random.Random(7)
    written_at = T0_MS + 5_000
    ids = await _random_contents(store, redis_client, rng, written_at)
    now = written_at + 1_000
    before = await store.signal_sums(ids, now)
    # Written in the same ms as the first write: _at alone would not tell.
    cid = ids[4]
    more = {cid: ContentDelta({now // MINUTE_MS - 3: [7, 2]}, reactors={"u:late"})}
    await redis_client.pfadd(keys.uniques(cid), "u:late")
    p = keys.partition(cid)
    assert await store.apply(p, ["again"], written_at, more, {}, {}) is None
    after = await store.signal_sums(ids, now)
    raw = await store.raw_signals(ids)
    assert after[cid] == sums(raw[cid], now) != before[cid]
    # views' last prefix sum (the whole span) is the ring's middle column.
    last = len(CUTS)
    assert after[cid].ring[last] == before[cid].ring[last] + 7
    assert all(after[c] == before[c] for c in ids if c != cid)
