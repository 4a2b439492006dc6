"""The engagement summary of one content as clients see it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from domain.counters import LIKES, REACTION_PREFIX, VIEWS
from domain.integrity import (
    DOUBTFUL_LIKES,
    DOUBTFUL_VIEWS,
    SUSPECT_LIKES,
    SUSPECT_VIEWS,
    IntegrityCounts,
    integrity_counts,
)
from domain.reactions import ReactionType

# The integrity of a count no doubtful or suspect actor touched (most of them).
_ALL_TRUSTED = IntegrityCounts(0, 0, 1.0)
_NOTHING = IntegrityCounts(0, 0, None)


class ReactionCount(NamedTuple):
    reaction: ReactionType
    # The GraphQL field's name; it hides tuple.count, which nothing here calls.
    count: int  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Summary:
    """What a client sees of one content: the GraphQL type EngagementSummary has
    these fields under these names, and reads them off this object."""

    content_id: str
    likes: int
    reactions: tuple[ReactionCount, ...]
    views: int
    unique_viewers: int
    viewer_reaction: ReactionType | None = None
    integrity: IntegrityCounts = _NOTHING

    def to_dict(self) -> dict[str, Any]:
        i = self.integrity
        return {
            "content_id": self.content_id,
            "likes": self.likes,
            "reactions": [[r.value, n] for r, n in self.reactions],
            "views": self.views,
            "unique_viewers": self.unique_viewers,
            "viewer_reaction": self.viewer_reaction.value if self.viewer_reaction else None,
            "integrity": [i.suspect_likes, i.suspect_views, i.trusted_share],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Summary:
        vr = raw.get("viewer_reaction")
        return cls(
            content_id=raw["content_id"],
            likes=int(raw["likes"]),
            reactions=tuple(ReactionCount(ReactionType(r), int(n)) for r, n in raw["reactions"]),
            views=int(raw["views"]),
            unique_viewers=int(raw["unique_viewers"]),
            viewer_reaction=ReactionType(vr) if vr else None,
            integrity=IntegrityCounts(*raw["integrity"]) if raw.get("integrity") else _NOTHING,
        )

    def for_viewer(self, viewer_reaction: ReactionType | None) -> Summary:
        return Summary(
            self.content_id,
            self.likes,
            self.reactions,
            self.views,
            self.unique_viewers,
            viewer_reaction,
            self.integrity,
        )


# Built once: summarize runs for every card of every feed and every push.
_REACTION_FIELDS = tuple((r, f"{REACTION_PREFIX}{r.value}") for r in ReactionType)


def summarize(
    content_id: str,
    counters: Mapping[str, int],
    unique_viewers: int = 0,
    viewer_reaction: ReactionType | None = None,
) -> Summary:
    # Runs for every card of every feed: a list comprehension, conditionals
    # instead of max/min and positional arguments keep it cheap
    # (docs/PERFORMANCE.md).
    get = counters.get
    reactions = tuple(
        [ReactionCount(r, n) for r, field in _REACTION_FIELDS if (n := get(field, 0)) > 0]
    )
    views = get(VIEWS, 0)
    if views < 0:
        views = 0
    likes = get(LIKES, 0)
    # An estimate (HyperLogLog) may overshoot by a little; never show more
    # distinct viewers than counted views.
    unique = unique_viewers if unique_viewers < views else views
    if get(SUSPECT_LIKES) or get(SUSPECT_VIEWS) or get(DOUBTFUL_LIKES) or get(DOUBTFUL_VIEWS):
        integrity = integrity_counts(counters)
    else:
        integrity = _ALL_TRUSTED if likes > 0 or views > 0 else _NOTHING
    return Summary(
        content_id,
        likes if likes > 0 else 0,
        reactions,
        views,
        unique if unique > 0 else 0,
        viewer_reaction,
        integrity,
    )
