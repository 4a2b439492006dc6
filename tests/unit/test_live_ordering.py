"""What a live subscriber shows next: never older, never the same twice."""

from __future__ import annotations

import pytest

from domain.reactions import ReactionType as R
from domain.summary import ReactionCount, Summary
from subscriptions.ordering import Shown, Step, accepts_read, advance, newer, on_counts


def summary(likes: int = 0, mine: R | None = None) -> Summary:
    reactions = (ReactionCount(R.LIKE, likes),) if likes else ()
    return Summary("c", likes, reactions, 0, 0, mine)


@pytest.mark.parametrize(
    ("shown", "incoming", "expected"),
    [(0, 1, True), (5, 6, True), (5, 5, False), (5, 4, False), (5, 0, False)],
)
def test_newer(shown: int, incoming: int, expected: bool) -> None:
    assert newer(shown, incoming) is expected


@pytest.mark.parametrize(
    ("shown", "incoming", "expected"),
    [
        pytest.param(Shown(5, summary()), 6, Step.SHOW, id="newer"),
        pytest.param(Shown(5, summary()), 5, Step.DROP, id="same-version"),
        pytest.param(Shown(5, summary()), 3, Step.DROP, id="older"),
        # Counts after a read that added the viewer's own unapplied events may
        # still lack them: re-read rather than show the viewer's change undone.
        pytest.param(Shown(5, summary(1, R.LIKE), own_pending=True), 6, Step.REREAD, id="pending"),
        pytest.param(
            Shown(5, summary(1, R.LIKE), own_pending=True), 5, Step.DROP, id="pending-old"
        ),
    ],
)
def test_on_counts(shown: Shown, incoming: int, expected: Step) -> None:
    assert on_counts(shown, incoming) is expected


@pytest.mark.parametrize(
    ("shown_version", "read_version", "expected"),
    [(5, 6, True), (5, 5, True), (5, 4, False), (0, 0, True)],
)
def test_accepts_read(shown_version: int, read_version: int, expected: bool) -> None:
    assert accepts_read(Shown(shown_version, summary()), read_version) is expected


@pytest.mark.parametrize(
    ("shown", "version", "new", "pending", "expected_shown", "push"),
    [
        pytest.param(
            Shown(1, summary()), 2, summary(1), False, Shown(2, summary(1)), True, id="change"
        ),
        pytest.param(
            Shown(1, summary(1)), 2, summary(1), False, Shown(2, summary(1)), False, id="same"
        ),
        pytest.param(
            Shown(1, summary(1)),
            1,
            summary(1, R.LIKE),
            False,
            Shown(1, summary(1, R.LIKE)),
            True,
            id="reaction-only",
        ),
        pytest.param(
            Shown(3, summary()),
            3,
            summary(1, R.LIKE),
            True,
            Shown(3, summary(1, R.LIKE), True),
            True,
            id="own-pending",
        ),
        pytest.param(
            Shown(3, summary(1, R.LIKE), True),
            4,
            summary(1, R.LIKE),
            False,
            Shown(4, summary(1, R.LIKE)),
            False,
            id="pending-settles-quietly",
        ),
        pytest.param(
            Shown(9, summary(2)), 4, summary(2), False, Shown(9, summary(2)), False, id="no-back"
        ),
    ],
)
def test_advance(
    shown: Shown, version: int, new: Summary, pending: bool, expected_shown: Shown, push: bool
) -> None:
    assert advance(shown, version, new, pending) == (expected_shown, push)


def test_advance_keeps_the_shown_summary_when_nothing_changed() -> None:
    shown = Shown(1, summary(1))
    after, push = advance(shown, 2, summary(1))
    assert not push and after.summary is shown.summary
