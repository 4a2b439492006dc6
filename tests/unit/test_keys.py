"""Key names: the batched builder names exactly what the single ones do."""

from __future__ import annotations

import pytest

from storage.keys import Keys


@pytest.mark.parametrize("keys", [Keys(), Keys(prefix="x", partitions=16)])
def test_batched_builders_match_the_single_key_builders(keys: Keys) -> None:
    ids = [f"c{i}" for i in range(50)] + ["é", "a:b", ""]
    by_partition: dict[int, list[str]] = {}
    for cid in ids:
        by_partition.setdefault(keys.partition(cid), []).append(cid)
    for p, cids in by_partition.items():
        expected = [k for c in cids for k in (keys.counters(c), keys.uniques(c))]
        assert keys.counter_pairs(p, cids) == expected
        expected = [
            k
            for c in cids
            for k in (
                keys.signal_ring(c),
                keys.reactor_viewers(c),
                keys.uniques(c),
                keys.counters(c),
            )
        ]
        assert keys.signal_read_keys(p, cids) == expected


def test_keys_of_one_content_share_its_partition_tag() -> None:
    keys = Keys(partitions=8)
    p = keys.partition("c42")
    tag = f"{{p{p}}}"
    assert tag in keys.counters("c42")
    assert tag in keys.uniques("c42")
    assert tag in keys.view_dedupe("c42", "viewer")
    assert tag in keys.stream(p) and tag in keys.applied(p)


def test_trending_keys_share_the_content_partition_tag() -> None:
    keys = Keys(partitions=8)
    p = keys.partition("c42")
    tag = f"lv:{{p{p}}}:"
    assert keys.signal_ring("c42") == f"{tag}sig:c42"
    assert keys.reactor_viewers("c42") == f"{tag}rv:c42"
    assert keys.trend_state("c42") == f"{tag}ts:c42"
    assert keys.trend_set(p, "1h", "VIDEO", "US") == f"{tag}tz:1h:VIDEO:US"
    assert keys.trend_applied(p) == f"{tag}tr-applied"
    assert keys.signals_stream(p) == f"{tag}signals"
    # A channel is not a key: no hash tag.
    assert Keys(prefix="x").trend_channel("5m", "ALL") == "x:trend:5m:ALL"
    assert Keys.TRENDING_GROUP == "trending"
