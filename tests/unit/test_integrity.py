"""Tiers and contributions (domain/integrity.py): tables, and the invariant that any
sequence of reaction changes and re-tierings, applied as deltas, ends at the
contribution of the final state (what a recount gives)."""

from __future__ import annotations

import itertools

import pytest

from domain.counters import add
from domain.integrity import (
    Bars,
    Tier,
    Verdict,
    difference,
    reaction_counters,
    tier_from,
    tier_of,
    view_counters,
)
from domain.reactions import ReactionType as R

BARS = Bars(exclude_below=0.3, confident_at=0.8)


@pytest.mark.parametrize(
    ("trust", "verdict", "expected"),
    [
        (1.0, Verdict.AUTO, Tier.TRUSTED),
        (0.8, Verdict.AUTO, Tier.TRUSTED),
        (0.79, Verdict.AUTO, Tier.DOUBTFUL),
        (0.3, Verdict.AUTO, Tier.DOUBTFUL),
        (0.29, Verdict.AUTO, Tier.EXCLUDED),
        (0.0, Verdict.AUTO, Tier.EXCLUDED),
        (1.0, Verdict.BOT, Tier.EXCLUDED),
        (0.0, Verdict.HUMAN, Tier.TRUSTED),
        (0.5, Verdict.HUMAN, Tier.TRUSTED),
    ],
)
def test_tier_of(trust: float, verdict: Verdict, expected: Tier) -> None:
    assert tier_of(trust, verdict, BARS) is expected


@pytest.mark.parametrize(
    ("reaction", "tier", "expected"),
    [
        (None, Tier.TRUSTED, {}),
        (None, Tier.EXCLUDED, {}),
        (R.LIKE, Tier.TRUSTED, {"likes": 1, "r:LIKE": 1}),
        (R.WOW, Tier.DOUBTFUL, {"likes": 1, "r:WOW": 1, "d_likes": 1}),
        (R.LOVE, Tier.EXCLUDED, {"x_likes": 1}),
        ("SAD", Tier.TRUSTED, {"likes": 1, "r:SAD": 1}),
    ],
)
def test_reaction_counters(reaction: R | str | None, tier: Tier, expected: dict[str, int]) -> None:
    assert reaction_counters(reaction, tier) == expected


@pytest.mark.parametrize(
    ("counted", "tier", "expected"),
    [
        (False, Tier.TRUSTED, {}),
        (False, Tier.EXCLUDED, {}),
        (True, Tier.TRUSTED, {"views": 1}),
        (True, Tier.DOUBTFUL, {"views": 1, "d_views": 1}),
        (True, Tier.EXCLUDED, {"x_views": 1}),
    ],
)
def test_view_counters(counted: bool, tier: Tier, expected: dict[str, int]) -> None:
    assert view_counters(counted, tier) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Tier.TRUSTED),
        ("doubtful", Tier.DOUBTFUL),
        ("excluded", Tier.EXCLUDED),
        ("?", Tier.TRUSTED),
    ],
)
def test_tier_from_a_stored_value(value: object, expected: Tier) -> None:
    assert tier_from(value) is expected


STATES = [(r, t) for r in (None, R.LIKE, R.LOVE) for t in Tier]


@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATES, STATES)))
def test_every_pair_of_states_moves_the_counters_by_the_difference(
    before: tuple[R | None, Tier], after: tuple[R | None, Tier]
) -> None:
    # Counters holding other documents' contributions, plus this one's "before":
    # the delta takes them to the same others plus this one's "after".
    others = {"likes": 5, "r:LIKE": 3, "r:LOVE": 2, "x_likes": 4, "d_likes": 1}
    start = add(others, reaction_counters(*before))
    moved = add(start, difference(reaction_counters(*after), reaction_counters(*before)))
    assert {k: v for k, v in moved.items() if v} == {
        k: v for k, v in add(others, reaction_counters(*after)).items() if v
    }


def test_a_retier_and_back_restores_exactly() -> None:
    counters: dict[str, int] = {"views": 10, "likes": 3, "r:LIKE": 3}
    docs = [(R.LIKE, Tier.TRUSTED)] * 3
    excluded = counters
    for reaction, tier in docs:
        excluded = add(
            excluded,
            difference(
                reaction_counters(reaction, Tier.EXCLUDED), reaction_counters(reaction, tier)
            ),
        )
    assert {k: v for k, v in excluded.items() if v} == {"views": 10, "x_likes": 3}
    restored = excluded
    for reaction, tier in docs:
        restored = add(
            restored,
            difference(
                reaction_counters(reaction, tier), reaction_counters(reaction, Tier.EXCLUDED)
            ),
        )
    assert {k: v for k, v in restored.items() if v} == counters
