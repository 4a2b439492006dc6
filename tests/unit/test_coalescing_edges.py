"""Coalescing edges that mutation testing found unpinned (see docs/MUTATION.md)."""

from __future__ import annotations

import pytest

from subscriptions.coalesce import EMPTY, LatestSlot, SlotTable

RATE_4 = 4.0


def test_a_pop_leaves_nothing_pending() -> None:
    # A slot left holding None after a pop would push a spurious resync marker
    # once the interval passes, and the client would refetch for nothing.
    table = SlotTable.for_rate(["a"], RATE_4)
    table.offer("a", "1")
    assert table.pop_due(0.0) == ("a", "1")
    assert table.slots["a"].pending is EMPTY
    assert table.pending_count == 0
    assert table.next_due() is None
    assert table.pop_due(10.0) is None


def test_a_popped_resync_is_not_pushed_again() -> None:
    table = SlotTable.for_rate(["a"], RATE_4)
    table.offer("a", None)
    assert table.pop_due(0.0) == ("a", None)
    assert table.pop_due(10.0) is None


@pytest.mark.parametrize(
    ("rate", "interval", "too_early", "due"),
    [
        (0.5, 2.0, 1.999, 2.0),
        (1.0, 1.0, 0.999, 1.0),
        (2.0, 0.5, 0.499, 0.5),
        (10.0, 0.1, 0.099, 0.1),
        (1000.0, 0.001, 0.0009, 0.001),
    ],
    ids=["half-per-second", "one-per-second", "two", "ten", "thousand"],
)
def test_other_rates(rate: float, interval: float, too_early: float, due: float) -> None:
    table = SlotTable.for_rate(["a", "b"], rate)
    assert table.min_interval == interval
    assert {name: slot.min_interval for name, slot in table.slots.items()} == {
        "a": interval,
        "b": interval,
    }
    table.offer("a", "1")
    assert table.pop_due(0.0) == ("a", "1")
    table.offer("a", "2")
    assert table.next_due() == due
    assert table.pop_due(too_early) is None
    assert table.pop_due(due) == ("a", "2")


@pytest.mark.parametrize(
    ("channels", "order"),
    [
        (["a", "b", "c"], ["a", "b", "c"]),
        (["c", "b", "a"], ["c", "b", "a"]),
        (["b", "a", "b"], ["b", "a"]),
    ],
    ids=["abc", "cba", "duplicate-channel"],
)
def test_equally_overdue_channels_go_in_subscription_order(
    channels: list[str], order: list[str]
) -> None:
    # Ties are common: every channel that never pushed is due at -inf. The order
    # is the order of subscription, whatever the order of the offers.
    table = SlotTable.for_rate(channels, RATE_4)
    for channel in reversed(order):
        table.offer(channel, channel)
    assert [table.pop_due(0.0) for _ in order] == [(c, c) for c in order]
    assert table.pop_due(0.0) is None


def test_equally_overdue_after_pushing_at_the_same_time() -> None:
    table = SlotTable.for_rate(["a", "b"], RATE_4)
    table.offer("b", "b1")
    table.offer("a", "a1")
    assert [table.pop_due(0.0), table.pop_due(0.0)] == [("a", "a1"), ("b", "b1")]
    table.offer("b", "b2")
    table.offer("a", "a2")
    assert [table.pop_due(1.0), table.pop_due(1.0)] == [("a", "a2"), ("b", "b2")]


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_rate_error_says_why(rate: float) -> None:
    with pytest.raises(ValueError) as excinfo:
        SlotTable.for_rate(["a"], rate)
    assert str(excinfo.value) == "max_per_second must be positive"


def test_take_without_a_pending_message_is_a_bug() -> None:
    with pytest.raises(AssertionError) as excinfo:
        LatestSlot(0.25).take(0.0)
    assert str(excinfo.value) == "take() without a pending message"


def test_empty_has_a_readable_repr() -> None:
    # It shows up in assertion failures and debug logs of a slot.
    assert repr(EMPTY) == "EMPTY"


def test_a_ranked_tie_at_version_zero_goes_to_the_later_arrival() -> None:
    # Version 0 is falsy: a tie there must still behave like any other tie.
    table = SlotTable.for_rate(["a"], RATE_4, rank=lambda message: int(message.split(":")[0]))
    table.offer("a", "0:a")
    table.offer("a", "0:b")
    assert table.pop_due(0.0) == ("a", "0:b")
