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


# Control channels (a subscriber's own "your reactions change" channel): each
# message says what changed, so none is rate limited, coalesced away or served
# after a counts message that was offered later.
CONTROL_TABLE: list[tuple[str, list[str], list[Step]]] = [
    (
        "a control message goes before an overdue counts message",
        ["a"],
        [
            (0.0, "offer", ("a", "1"), None),
            (0.0, "pop", None, ("a", "1")),
            (0.1, "offer", ("mine", "m1"), None),
            (0.1, "pop", None, ("mine", "m1")),
            (0.2, "offer", ("a", "2"), None),
            (0.3, "offer", ("mine", "m2"), None),
            (5.0, "pop", None, ("mine", "m2")),
            (5.0, "pop", None, ("a", "2")),
        ],
    ),
    (
        "a control channel is never rate limited",
        [],
        [
            (0.0, "offer", ("mine", "m1"), None),
            (0.0, "pop", None, ("mine", "m1")),
            (0.0, "offer", ("mine", "m2"), None),
            (0.0, "pop", None, ("mine", "m2")),
        ],
    ),
    (
        "two control messages not yet taken become one resync",
        [],
        [
            (0.0, "offer", ("mine", "m1"), None),
            (0.0, "offer", ("mine", "m2"), None),
            (0.0, "pop", None, ("mine", None)),
            (0.0, "pop", None, None),
        ],
    ),
    (
        "a pending control resync is not narrowed by a later message",
        [],
        [
            (0.0, "offer", ("mine", None), None),
            (0.0, "offer", ("mine", "m1"), None),
            (0.0, "pop", None, ("mine", None)),
        ],
    ),
    (
        "a control channel also named as a channel stays a control channel",
        ["mine", "a"],
        [
            (0.0, "offer", ("a", "1"), None),
            (0.0, "offer", ("mine", "m1"), None),
            (0.0, "pop", None, ("mine", "m1")),
            (0.0, "pop", None, ("a", "1")),
        ],
    ),
]


@pytest.mark.parametrize(
    ("channels", "steps"),
    [(c, s) for _, c, s in CONTROL_TABLE],
    ids=[name for name, _, _ in CONTROL_TABLE],
)
def test_control_slots(channels: list[str], steps: list[Step]) -> None:
    table = SlotTable.for_rate(channels, RATE_4, control=["mine"])
    for now, action, arg, expected in steps:
        if action == "offer":
            assert isinstance(arg, tuple)
            table.offer(*arg)
        else:
            assert table.pop_due(now) == expected, f"at t={now}"
    assert table.pending_count <= len(table.slots)


# Ranked slots (live counts carry a version): the pending message is the newest
# snapshot, whatever order the messages arrived in.
RANKED_TABLE: list[tuple[str, list[str | None], str | None]] = [
    ("a newer message replaces a pending one", ["3:a", "5:b"], "5:b"),
    ("an older message does not replace a newer pending one", ["5:b", "3:a"], "5:b"),
    ("the same version: the later arrival", ["5:a", "5:b"], "5:b"),
    ("a pending resync is kept: it re-reads everything", [None, "9:a"], None),
    ("a resync replaces a pending message", ["9:a", None], None),
    ("a pending resync outlasts any number of messages", [None, "9:a", "4:b"], None),
]


def version_rank(message: str) -> int:
    return int(message.split(":")[0])


@pytest.mark.parametrize(
    ("offers", "expected"),
    [(o, e) for _, o, e in RANKED_TABLE],
    ids=[name for name, _, _ in RANKED_TABLE],
)
def test_ranked_slots(offers: list[str | None], expected: str | None) -> None:
    table = SlotTable.for_rate(["a"], RATE_4, rank=version_rank)
    for message in offers:
        table.offer("a", message)
    assert table.pop_due(0.0) == ("a", expected)
    assert table.pop_due(10.0) is None


def test_a_ranked_slot_takes_an_older_message_once_the_newer_was_taken() -> None:
    # Whether it is still worth showing is the subscriber's decision (its
    # version check), not the slot's: the slot only keeps the newest pending.
    table = SlotTable.for_rate(["a"], RATE_4, rank=version_rank)
    table.offer("a", "5:b")
    assert table.pop_due(0.0) == ("a", "5:b")
    table.offer("a", "3:a")
    assert table.pop_due(0.25) == ("a", "3:a")


def test_control_slots_are_not_ranked() -> None:
    table = SlotTable.for_rate(["a"], RATE_4, control=["mine"], rank=version_rank)
    table.offer("mine", '["v1"]')  # not a counts message: never ranked
    assert table.pop_due(0.0) == ("mine", '["v1"]')
