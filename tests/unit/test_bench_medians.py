"""The bench judges its targets on the medians of repeated runs."""

from __future__ import annotations

import pytest

from bench import suite
from bench.suite import medians


def run(ratio, feed_ratio, exact="PASS"):
    return {
        "results": {"1_likes": {"ratio_pct": ratio}, "3_feed": {"ratio_pct": feed_ratio}},
        "rows": [
            {"scenario": "1", "metric": "ratio", "target": ">= 60%", "verdict": "X"},
            {"scenario": "2", "metric": "exact", "target": "equal", "verdict": exact},
        ],
    }


def by_metric(rows):
    return {r["metric"]: r for r in rows}


def test_the_median_decides_not_the_best_or_the_last_run():
    got = by_metric(medians([run(79, 90), run(90, 70), run(81, 79)]))
    ratio = got["GraphQL like throughput vs control (%)"]
    assert (ratio["median"], ratio["values"], ratio["verdict"]) == (81, [79, 90, 81], "PASS")
    feed = got["feed read throughput vs control (%)"]
    assert (feed["median"], feed["verdict"]) == (79, "MISS")
    # scenarios that were not run are left out, not judged on nothing
    assert "recordViews throughput vs control (%)" not in got


def test_a_correctness_check_must_pass_in_every_run():
    assert by_metric(medians([run(90, 90), run(90, 90)]))["exact"]["verdict"] == "PASS"
    flaky = by_metric(medians([run(90, 90), run(90, 90, exact="MISS")]))["exact"]
    assert (flaky["value"], flaky["verdict"]) == ("PASS in 1 of 2 runs", "MISS")


@pytest.mark.parametrize(
    ("ok_rps", "redis_pct", "per_request", "ops", "share"),
    [
        (1000.0, 10.0, 1, 10_000, 10.0),  # 10% of a core for 1,000/s: 10,000/s per core
        (90.0, 3.0, 100, 300_000, 3.0),  # a request of 100 view events
        (500.0, 100.0, 1, 500, 100.0),  # Redis saturated: the service is at its ceiling
    ],
)
def test_the_redis_ceiling_is_the_work_one_core_serves(
    ok_rps: float, redis_pct: float, per_request: int, ops: int, share: float
) -> None:
    res = {"ok_rps": ok_rps, "cpu_pct": {"server": 99.0, "redis": redis_pct}}
    got = suite.redis_cpu_ceiling(res, per_request)
    assert got == {"redis_cpu_pct": redis_pct, "ops_per_s": ops, "service_share_pct": share}


def test_no_ceiling_without_a_redis_reading() -> None:
    assert suite.redis_cpu_ceiling({"ok_rps": 10.0, "cpu_pct": {"redis": 0.0}}) == {}
