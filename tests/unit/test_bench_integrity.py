"""The pure helpers of scenario 9 (bench/integrity.py) and the suite's abuse-limit env."""

from __future__ import annotations

import pytest

from bench.integrity import (
    class_outcome,
    last_change,
    organic_outcome,
    qualifies,
    quiet_for,
    scripted_steps,
    threshold_ms,
)
from bench.suite import BENCH_RATE, rate_limit_env
from domain.rate_limits import parse_rate


def test_thresholds_follow_the_shipped_policies():
    assert threshold_ms("SHORT", 30_000) == 2_000
    assert threshold_ms("VIDEO", 600_000) == 30_000
    assert threshold_ms("VIDEO", 20_000) == 18_000  # 90% of a video shorter than 30 s
    assert threshold_ms("POST", None) == 1_000


@pytest.mark.parametrize(
    ("kind", "events", "counts"),
    [
        ("SHORT", [(0, None), (1_999, None)], False),
        ("SHORT", [(0, None), (1_000, None), (1_000, None)], True),
        ("VIDEO", [(29_999, None)], False),
        ("VIDEO", [(10_000, None)] * 3, True),
        # Posts: only time with at least half the card on screen counts.
        ("POST", [(5_000, 0.49)], False),
        ("POST", [(1_000, 0.5)], True),
        ("POST", [(900, None), (900, 0.9)], False),
    ],
)
def test_qualifies(kind, events, counts):
    assert qualifies(kind, 600_000 if kind == "VIDEO" else 30_000, events) is counts


def test_class_outcome_subtracts_what_organic_users_did():
    out = class_outcome(attempted=100, public=13, legit=3, suspect=40, ingest=50)
    assert out == {
        "attempted": 100,
        "through": 10,
        "kept_out": 90,
        "blocked_pct": 90.0,
        "refused_at_ingest": 50,
        "excluded_by_integrity": 40,
    }
    assert class_outcome(0, 0, 0, 0, 0)["blocked_pct"] is None
    # Public below what organic users did: nothing got through.
    assert class_outcome(5, 1, 2, 0, 5)["through"] == 0


def test_organic_outcome_counts_losses_and_overcounts_per_content():
    out = organic_outcome(10, 9, [(4, 4), (4, 2), (2, 3)])
    assert out == {"expected": 10, "public": 9, "lost": 2, "over": 1, "loss_pct": 20.0}


def test_settling():
    samples = [(0.0, "a"), (1.0, "a"), (2.0, "b"), (3.0, "b"), (5.0, "b")]
    assert last_change(samples) == 2.0
    assert quiet_for(samples) == 3.0
    assert last_change([(0.0, "a"), (1.0, "a")]) is None
    assert quiet_for([(0.0, "a")]) == 0.0


def test_scripted_steps_are_identical_every_time():
    steps = scripted_steps(10.0, 3, 10_000, 1_500)
    assert steps == scripted_steps(10.0, 3, 10_000, 1_500)
    assert [s[1] for s in steps] == [0, 10_000, 10_000, 10_000, 1_500]
    assert [s[2] for s in steps] == [0, 10_000, 20_000, 30_000, 31_500]


def test_suite_limits_are_on_but_out_of_reach_or_off():
    env = rate_limit_env(False)
    assert env["RATE_LIMITS"] == "true"
    assert len([k for k in env if k.startswith("RATE_LIMIT_")]) == 9
    assert all(v == BENCH_RATE for k, v in env.items() if k != "RATE_LIMITS")
    assert parse_rate(BENCH_RATE).per_minute >= 1e8
    assert rate_limit_env(True) == {"RATE_LIMITS": "false"}
