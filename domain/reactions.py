"""Reaction state and the transitions between states (pure)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from domain.counters import LIKES, reaction_field


class ReactionType(enum.StrEnum):
    LIKE = "LIKE"
    LOVE = "LOVE"
    LAUGH = "LAUGH"
    WOW = "WOW"
    SAD = "SAD"
    ANGRY = "ANGRY"


@dataclass(frozen=True, slots=True)
class Transition:
    before: ReactionType | None
    after: ReactionType | None
    changed: bool
    deltas: dict[str, int]


def transition(before: ReactionType | None, wanted: ReactionType | None) -> Transition:
    """Move a viewer's reaction from ``before`` to ``wanted`` (None = no reaction).

    One active reaction per (viewer, content): switching types moves one unit
    between the type counters and leaves ``likes`` (all active reactions) alone.
    """
    if before == wanted:
        return Transition(before, wanted, False, {})
    deltas: dict[str, int] = {}
    if before is not None:
        deltas[reaction_field(before)] = -1
    if wanted is not None:
        deltas[reaction_field(wanted)] = 1
    likes_delta = (wanted is not None) - (before is not None)
    if likes_delta:
        deltas[LIKES] = likes_delta
    return Transition(before, wanted, True, deltas)
