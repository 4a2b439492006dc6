"""The pure helpers of scenario 10 (bench/notifications.py): hours, the sliding hour
the limits bound, and the truth a digest's count is checked against."""

from __future__ import annotations

from bench.notifications import HOUR_MS, digest_truth, max_sliding_hour, per_hour, seq_ms


def test_seq_ms_reads_the_creation_time() -> None:
    assert seq_ms("01795435200123-abcdef0123456789abcd") == 1_795_435_200_123


def test_per_hour_buckets_by_whole_hours_since_the_start() -> None:
    start = 1_000
    hours = per_hour(
        [start, start + HOUR_MS - 1, start + HOUR_MS, start + 3 * HOUR_MS],
        ["A", "B", "A", "A"],
        start,
    )
    assert {h: dict(c) for h, c in hours.items()} == {
        0: {"A": 1, "B": 1},
        1: {"A": 1},
        3: {"A": 1},
    }


def test_the_sliding_hour_includes_both_ends() -> None:
    # Three at t, t + 1 h: four in [t, t + 1 h], which the limit of 3 forbids.
    assert max_sliding_hour([0, 10, 20, HOUR_MS]) == 4
    assert max_sliding_hour([0, 10, 20, HOUR_MS + 1]) == 3
    assert max_sliding_hour([]) == 0
    assert max_sliding_hour([5, 0, 3 * HOUR_MS]) == 2


def test_digest_truth_counts_likes_from_each_start_to_the_next() -> None:
    likes = [0, 1, 599_999, 600_000, 600_001, 4_000_000]
    assert digest_truth([0, 600_000], likes) == [3, 3]
    assert digest_truth([0, 600_000, 4_000_000], likes) == [3, 2, 1]
    assert digest_truth([], likes) == []
