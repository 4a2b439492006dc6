"""Which buckets a dashboard reads, and which fields of each (plan_reads)."""

from __future__ import annotations

import pytest

from domain.analytics import DAY_MS, HOUR_MS, MINUTE_MS, Granularity, cover
from domain.analytics_reads import Read, plan_reads

D, H, M = Granularity.DAY, Granularity.HOUR, Granularity.MINUTE
SERIES = ("likes_added", "likes_removed", "views", "watch_ms")
WITH_REGION = ("likes_added", "likes_removed", "region", "views", "watch_ms")
DAY0 = 20_000 * DAY_MS


def hours(first: int, last: int) -> tuple[int, ...]:
    """Hour starts from DAY0 + first hours to DAY0 + last hours (exclusive)."""
    return tuple(DAY0 + h * HOUR_MS for h in range(first, last))


def days(first: int, last: int) -> tuple[int, ...]:
    return tuple(DAY0 + d * DAY_MS for d in range(first, last))


def minutes(first: int, last: int) -> tuple[int, ...]:
    return tuple(DAY0 + m * MINUTE_MS for m in range(first, last))


@pytest.mark.parametrize(
    ("granularity", "start", "end", "with_series", "fields", "expected"),
    [
        # Whole days by DAY: the series' buckets are the cover, one read of both.
        (D, DAY0, DAY0 + 3 * DAY_MS, True, {"region"}, [Read(D, days(0, 3), WITH_REGION)]),
        (D, DAY0, DAY0 + 3 * DAY_MS, False, {"region"}, [Read(D, days(0, 3), ("region",))]),
        (D, DAY0, DAY0 + 3 * DAY_MS, True, set(), [Read(D, days(0, 3), SERIES)]),
        (D, DAY0, DAY0 + 3 * DAY_MS, False, set(), []),
        # 28 hours by HOUR, 22:00 to 02:00 two days later: the whole day in the
        # middle summed from its day bucket, its hours read for the series only.
        (
            H,
            DAY0 + 22 * HOUR_MS,
            DAY0 + 50 * HOUR_MS,
            True,
            {"region", "views"},
            [
                Read(D, days(1, 2), ("region", "views")),
                Read(H, hours(22, 24) + hours(48, 50), WITH_REGION),
                Read(H, hours(24, 48), SERIES),
            ],
        ),
        (
            H,
            DAY0 + 22 * HOUR_MS,
            DAY0 + 50 * HOUR_MS,
            False,
            {"region"},
            [Read(D, days(1, 2), ("region",)), Read(H, hours(22, 24) + hours(48, 50), ("region",))],
        ),
        # By MINUTE, 09:58 to 12:01: two whole hours and minutes at the edges.
        (
            M,
            DAY0 + 598 * MINUTE_MS,
            DAY0 + 721 * MINUTE_MS,
            True,
            {"region"},
            [
                Read(H, hours(10, 12), ("region",)),
                Read(M, minutes(598, 600) + minutes(720, 721), WITH_REGION),
                Read(M, minutes(600, 720), SERIES),
            ],
        ),
    ],
)
def test_plan_reads(
    granularity: Granularity,
    start: int,
    end: int,
    with_series: bool,
    fields: set[str],
    expected: list[Read],
) -> None:
    size = {D: DAY_MS, H: HOUR_MS, M: MINUTE_MS}[granularity]
    series = list(range(start, end, size)) if with_series else []
    reads = plan_reads(granularity, series, cover(start, end), fields)
    assert reads == expected
    # Each bucket once; the series' buckets all read with the series' counters.
    keys = [(r.granularity, s) for r in reads for s in r.starts]
    assert len(keys) == len(set(keys))
    with_counters = {s for r in reads if r.granularity is granularity for s in r.starts}
    assert set(series) <= with_counters
    assert all(
        set(SERIES) <= set(r.fields)
        for r in reads
        if r.granularity is granularity and set(r.starts) & set(series)
    )
