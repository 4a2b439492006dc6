"""Count integrity (pure): an actor's tier, and what each engagement document adds
to its content's counters in each tier.

Every reaction and counted view session carries the tier its actor had when it was
last written. Its contribution to the counters is a function of its state and that
tier:

- trusted: the public count (``likes``, ``r:<type>``, ``views``);
- doubtful (trust under the confidence bar): the public count, and the
  ``d_likes``/``d_views`` counters, so a count can say how much of it is trusted;
- excluded (trust under the exclusion bar, or a BOT verdict): not in the public
  count, only in ``x_likes``/``x_views`` (suspect).

Re-tiering a document changes its contribution by ``difference(after, before)``,
which is the delta of the integrity event the change writes to the document's
outbox: the counters follow through the event log as for a like, and a recount
of the documents (grouped by tier) gives the same numbers. Nothing is deleted, so
restoring a tier restores the counts exactly.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from domain.counters import LIKES, VIEWS, reaction_field
from domain.reactions import ReactionType

SUSPECT_LIKES = "x_likes"
SUSPECT_VIEWS = "x_views"
DOUBTFUL_LIKES = "d_likes"
DOUBTFUL_VIEWS = "d_views"


class Tier(enum.StrEnum):
    TRUSTED = "trusted"
    DOUBTFUL = "doubtful"
    EXCLUDED = "excluded"


class Verdict(enum.StrEnum):
    BOT = "BOT"
    HUMAN = "HUMAN"
    AUTO = "AUTO"


@dataclass(frozen=True, slots=True)
class Bars:
    exclude_below: float = 0.3
    confident_at: float = 0.8


def tier_of(trust: float, verdict: Verdict, bars: Bars) -> Tier:
    """An admin's BOT or HUMAN overrides the score; AUTO follows it."""
    if verdict is Verdict.BOT:
        return Tier.EXCLUDED
    if verdict is Verdict.HUMAN:
        return Tier.TRUSTED
    if trust < bars.exclude_below:
        return Tier.EXCLUDED
    if trust < bars.confident_at:
        return Tier.DOUBTFUL
    return Tier.TRUSTED


def reaction_counters(reaction: ReactionType | str | None, tier: Tier) -> dict[str, int]:
    """What one reaction document adds to its content's counters."""
    if reaction is None:
        return {}
    if tier is Tier.EXCLUDED:
        return {SUSPECT_LIKES: 1}
    value = reaction.value if isinstance(reaction, ReactionType) else reaction
    out = {LIKES: 1, reaction_field(value): 1}
    if tier is Tier.DOUBTFUL:
        out[DOUBTFUL_LIKES] = 1
    return out


def view_counters(counted: bool, tier: Tier) -> dict[str, int]:
    """What one view session adds to its content's counters."""
    if not counted:
        return {}
    if tier is Tier.EXCLUDED:
        return {SUSPECT_VIEWS: 1}
    if tier is Tier.DOUBTFUL:
        return {VIEWS: 1, DOUBTFUL_VIEWS: 1}
    return {VIEWS: 1}


def tier_of_view(deltas: Mapping[str, int]) -> Tier:
    """The tier a counted view's deltas were written in (view_counters' inverse)."""
    if deltas.get(SUSPECT_VIEWS, 0) > 0:
        return Tier.EXCLUDED
    if deltas.get(DOUBTFUL_VIEWS, 0) > 0:
        return Tier.DOUBTFUL
    return Tier.TRUSTED


def difference(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """after - before, field by field, zeros left out."""
    out = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
    return {k: v for k, v in sorted(out.items()) if v}


def tier_from(value: object) -> Tier:
    """A stored tier (absent on documents written before tiers: trusted)."""
    try:
        return Tier(str(value)) if value is not None else Tier.TRUSTED
    except ValueError:
        return Tier.TRUSTED


@dataclass(frozen=True, slots=True)
class IntegrityCounts:
    """What a count can say about itself (EngagementSummary.integrity)."""

    suspect_likes: int
    suspect_views: int
    # The share of the public likes and views from trusted actors; None when
    # there are none.
    trusted_share: float | None


def integrity_counts(counters: Mapping[str, int]) -> IntegrityCounts:
    public = max(counters.get(LIKES, 0), 0) + max(counters.get(VIEWS, 0), 0)
    doubtful = max(counters.get(DOUBTFUL_LIKES, 0), 0) + max(counters.get(DOUBTFUL_VIEWS, 0), 0)
    share = None if public <= 0 else max(0.0, min(1.0, (public - doubtful) / public))
    return IntegrityCounts(
        max(counters.get(SUSPECT_LIKES, 0), 0), max(counters.get(SUSPECT_VIEWS, 0), 0), share
    )
