"""The engagement summary of one content as clients see it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from domain.counters import LIKES, REACTION_PREFIX, VIEWS
from domain.reactions import ReactionType


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "content_id": self.content_id,
            "likes": self.likes,
            "reactions": [[r.value, n] for r, n in self.reactions],
            "views": self.views,
            "unique_viewers": self.unique_viewers,
            "viewer_reaction": self.viewer_reaction.value if self.viewer_reaction else None,
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
        )

    def for_viewer(self, viewer_reaction: ReactionType | None) -> Summary:
        return Summary(
            self.content_id,
            self.likes,
            self.reactions,
            self.views,
            self.unique_viewers,
            viewer_reaction,
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
    return Summary(
        content_id,
        likes if likes > 0 else 0,
        reactions,
        views,
        unique if unique > 0 else 0,
        viewer_reaction,
    )
