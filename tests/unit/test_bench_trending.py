"""The pure helpers of scenario 8 (bench/trending.py) and the trending lag probe
of scenario 4 (bench/freshness.py)."""

from __future__ import annotations

import orjson
import pytest

from bench.freshness import signals_show
from bench.trending import likes_to_enter, logged_events, reads, relabel, scores
from domain.events import EngagementEvent
from domain.log import Delivery
from domain.trending import WINDOWS, TrendWindow, heat


def entry(partition: int, n: int, events: int = 1, raw: int = 0) -> Delivery:
    evs = tuple(
        EngagementEvent.from_dict(
            {
                "event_id": f"e{partition}-{n}-{i}",
                "kind": "view",
                "content_id": "a0000",
                "actor": "v",
                "occurred_at_ms": 0,
                "deltas": {"views": 1},
                "unique": "v",
                "data": {},
            }
        )
        for i in range(events)
    )
    return Delivery(partition, f"{n}-0", evs, orjson.dumps([{}] * raw) if raw else None, raw)


def test_reads_take_up_to_count_entries_of_every_partition_oldest_first():
    entries = [entry(p, n) for p in (0, 1) for n in range(1, 6)] + [entry(2, 1)]
    got = reads(entries, 2)
    assert [[(d.partition, d.message_id) for d in r] for r in got] == [
        [(0, "1-0"), (0, "2-0"), (1, "1-0"), (1, "2-0"), (2, "1-0")],
        [(0, "3-0"), (0, "4-0"), (1, "3-0"), (1, "4-0")],
        [(0, "5-0"), (1, "5-0")],
    ]
    assert reads([], 200) == []


def test_relabel_gives_every_set_stream_ids_of_its_own():
    one = relabel([entry(0, 1), entry(1, 1)], 1)
    two = relabel([entry(0, 1), entry(1, 1)], 2)
    assert [d.message_id for d in one] == ["1-1", "2-1"]
    assert {d.message_id for d in one}.isdisjoint(d.message_id for d in two)
    assert [d.partition for d in two] == [0, 1]  # nothing else changes


def test_logged_events_count_raw_view_events_too():
    assert logged_events([entry(0, 1, events=3, raw=2), entry(1, 1, events=1)]) == 6


def test_scores_of_a_trending_answer():
    answer = orjson.dumps({"data": {"trending": [{"score": 3.5, "content": {"contentId": "x"}}]}})
    assert scores(answer) == {"x": 3.5}
    assert scores(orjson.dumps({"errors": [{"message": "no"}]})) == {}


@pytest.mark.parametrize("bar", [0.0, 1.0, 300.0, 5_000.0])
def test_likes_to_enter_is_the_fewest_likes_above_the_bar(bar):
    spec = WINDOWS[TrendWindow.FIVE_MINUTES]
    n = likes_to_enter(bar)
    assert heat(5.0 * n, 5.0 * n, spec) > bar
    assert n == 1 or heat(5.0 * (n - 1), 5.0 * (n - 1), spec) <= bar


def signals(likes_per_hour_rate: float, updated: str | None) -> dict:
    return {
        "likesPerMinute": {"oneHour": likes_per_hour_rate},
        "viewsPerMinute": {"oneHour": 0.0},
        "updatedAt": updated,
    }


SENT_MS = 1_764_547_200_000  # 2025-12-01T00:00:00Z


def test_signals_show_a_like_once_updated_after_the_send_and_counted():
    at = "2025-12-01T00:00:00.020000+00:00"
    assert signals_show(signals(3 / 60, at), "likesPerMinute", 3, SENT_MS)
    # 3 likes as a float quotient may read back a hair under 3.
    assert signals_show(signals(2.9999999999999996 / 60, at), "likesPerMinute", 3, SENT_MS)
    assert not signals_show(signals(2 / 60, at), "likesPerMinute", 3, SENT_MS)
    assert not signals_show(signals(0.0, at), "viewsPerMinute", 1, SENT_MS)


def test_signals_changed_before_the_send_or_never_do_not_show_it():
    before = "2025-11-30T23:59:59.990000+00:00"
    assert not signals_show(signals(3 / 60, before), "likesPerMinute", 3, SENT_MS)
    assert not signals_show(signals(3 / 60, None), "likesPerMinute", 3, SENT_MS)
    # The same ms, or a ms of rounding before it, counts.
    assert signals_show(signals(3 / 60, "2025-12-01T00:00:00+00:00"), "likesPerMinute", 3, SENT_MS)
