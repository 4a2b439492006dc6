"""Latest-value slots and per-channel rate limiting, driven by a fake clock."""

from __future__ import annotations

import math

import pytest

from subscriptions.coalesce import LatestSlot, SlotTable

# Each step: (time, action, argument, expected)
#   ("offer", msg, None)        -> offer msg (None = resync marker)
#   ("pop", None, expected)     -> pop_due(time); expected (channel, msg) or None
Step = tuple[float, str, object, object]

RATE_4 = 4.0  # min interval 0.25s

TABLE: list[tuple[str, list[str], list[Step]]] = [
    (
        "first message is pushed at once",
        ["a"],
        [(0.0, "offer", ("a", "1"), None), (0.0, "pop", None, ("a", "1"))],
    ),
    (
        "nothing pending, nothing due",
        ["a"],
        [(0.0, "pop", None, None)],
    ),
    (
        "second push waits for the interval",
        ["a"],
        [
            (0.0, "offer", ("a", "1"), None),
            (0.0, "pop", None, ("a", "1")),
            (0.1, "offer", ("a", "2"), None),
            (0.1, "pop", None, None),
            (0.249, "pop", None, None),
            (0.25, "pop", None, ("a", "2")),
        ],
    ),
    (
        "storm keeps only the newest value",
        ["a"],
        [
            (0.0, "offer", ("a", "1"), None),
            (0.0, "pop", None, ("a", "1")),
            *[(0.01 * i, "offer", ("a", str(i)), None) for i in range(2, 20)],
            (0.2, "pop", None, None),
            (0.3, "pop", None, ("a", "19")),
            (0.3, "pop", None, None),
        ],
    ),
    (
        "channels are rate limited independently",
        ["a", "b"],
        [
            (0.0, "offer", ("a", "a1"), None),
            (0.0, "pop", None, ("a", "a1")),
            (0.1, "offer", ("a", "a2"), None),
            (0.1, "offer", ("b", "b1"), None),
            (0.1, "pop", None, ("b", "b1")),
            (0.1, "pop", None, None),
            (0.25, "pop", None, ("a", "a2")),
        ],
    ),
    (
        "most overdue channel goes first",
        ["a", "b"],
        [
            (0.0, "offer", ("b", "b1"), None),
            (0.0, "pop", None, ("b", "b1")),
            (0.1, "offer", ("a", "a1"), None),
            (0.1, "pop", None, ("a", "a1")),
            (0.2, "offer", ("a", "a2"), None),
            (0.2, "offer", ("b", "b2"), None),
            (1.0, "pop", None, ("b", "b2")),
            (1.0, "pop", None, ("a", "a2")),
        ],
    ),
    (
        "resync is delivered like a message",
        ["a"],
        [(0.0, "offer", ("a", None), None), (0.0, "pop", None, ("a", None))],
    ),
    (
        "a newer message supersedes a pending resync",
        ["a"],
        [
            (0.0, "offer", ("a", "1"), None),
            (0.0, "pop", None, ("a", "1")),
            (0.1, "offer", ("a", None), None),
            (0.2, "offer", ("a", "2"), None),
            (0.3, "pop", None, ("a", "2")),
        ],
    ),
    (
        "a resync supersedes a pending message",
        ["a"],
        [
            (0.0, "offer", ("a", "1"), None),
            (0.0, "pop", None, ("a", "1")),
            (0.1, "offer", ("a", "2"), None),
            (0.2, "offer", ("a", None), None),
            (0.3, "pop", None, ("a", None)),
        ],
    ),
    (
        "an idle channel pushes immediately again",
        ["a"],
        [
            (0.0, "offer", ("a", "1"), None),
            (0.0, "pop", None, ("a", "1")),
            (5.0, "offer", ("a", "2"), None),
            (5.0, "pop", None, ("a", "2")),
        ],
    ),
]


@pytest.mark.parametrize(
    ("channels", "steps"), [(c, s) for _, c, s in TABLE], ids=[name for name, _, _ in TABLE]
)
def test_slot_table(channels: list[str], steps: list[Step]) -> None:
    table = SlotTable.for_rate(channels, RATE_4)
    for now, action, arg, expected in steps:
        if action == "offer":
            assert isinstance(arg, tuple)
            table.offer(*arg)
        else:
            assert table.pop_due(now) == expected, f"at t={now}"
    # Bounded memory: never more than one pending value per channel.
    assert table.pending_count <= len(channels)


@pytest.mark.parametrize(
    ("last_push", "pending", "expected"),
    [
        (None, False, None),
        (None, True, -math.inf),
        (1.0, True, 1.25),
        (1.0, False, None),
    ],
)
def test_due_at(last_push: float | None, pending: bool, expected: float | None) -> None:
    slot = LatestSlot(0.25, last_push=last_push)
    if pending:
        slot.offer("x")
    assert slot.due_at() == expected


@pytest.mark.parametrize(
    ("offers", "expected_pending"),
    [([], 0), (["1"], 1), ([str(i) for i in range(10_000)], 1)],
)
def test_stalled_slot_holds_one_value(offers: list[str], expected_pending: int) -> None:
    table = SlotTable.for_rate(["a"], RATE_4)
    for message in offers:
        table.offer("a", message)
    assert table.pending_count == expected_pending
    if offers:
        assert table.pop_due(0.0) == ("a", offers[-1])


@pytest.mark.parametrize(
    ("channels", "expected"),
    [(["a", "b"], ("a", "b")), (["a", "a", "b"], ("a", "b")), ([], ())],
)
def test_channels_are_deduplicated(channels: list[str], expected: tuple[str, ...]) -> None:
    assert tuple(SlotTable.for_rate(channels, RATE_4).slots) == expected


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError):
        SlotTable.for_rate(["a"], rate)


def test_next_due() -> None:
    table = SlotTable.for_rate(["a", "b"], RATE_4)
    assert table.next_due() is None
    table.offer("a", "1")
    assert table.pop_due(1.0) == ("a", "1")
    table.offer("a", "2")
    assert table.next_due() == 1.25
    table.offer("b", "1")
    assert table.next_due() == -math.inf
