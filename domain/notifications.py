"""Creator notifications (pure): kinds, dedupe keys and ids, what crosses a
milestone, the text of each kind, and the rate-limit decision that sends, folds,
waits or drops a notification. docs/NOTIFICATIONS.md has the design.

Exactly once is the notification id: a hash of its dedupe key, which names what
the creator is told (``milestone:<content>:likes:100``). Storing a notification
is an insert of that id; a duplicate-key answer means it was stored already (a
redelivery, a replay, a second worker), so nothing is sent twice.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.counters import LIKES, REACTION_PREFIX, VIEWS
from domain.events import REACTION, VIEW, EngagementEvent
from domain.integrity import DOUBTFUL_LIKES, DOUBTFUL_VIEWS

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# Likes or views crossing each of these is a MILESTONE.
THRESHOLDS: tuple[int, ...] = (10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
METRICS = ("likes", "views")
# TRENDING: a place in the top this many of the content's kind.
TRENDING_TOP = 20
# VIRAL: the recent views per minute a content needs besides its velocity ratio, so
# that a content going from 0 to 1 view a minute is not "viral".
VIRAL_MIN_VIEWS_PER_MINUTE = 1.0
# The digest names this many actors when it names them all, and 2 otherwise.
DIGEST_NAMED = 3
# Folded items a digest lists (it counts all of them).
DIGEST_FOLDED_LISTED = 20
MAX_PAGE = 100
MAX_MUTED_CONTENTS = 1_000


class NotificationKind(enum.StrEnum):
    FIRST_LIKE = "FIRST_LIKE"
    REACTIONS_DIGEST = "REACTIONS_DIGEST"
    MILESTONE = "MILESTONE"
    VIRAL = "VIRAL"
    TRENDING = "TRENDING"


# --- settings ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """The notifier's settings (main.Settings, README configuration)."""

    ttl_s: int = 90 * 86_400
    digest_s: float = 600.0
    per_content_per_hour: int = 3
    per_hour: int = 20
    viral_ratio: float = 5.0
    settle_s: float = 60.0
    viral_min_views_per_minute: float = VIRAL_MIN_VIEWS_PER_MINUTE
    # A content's heat (domain/trending.py) below this is not "trending", even in
    # the top 20: on a quiet platform every liked content is in some top 20.
    trending_min_heat: float = 25.0


# --- ids and dedupe keys -------------------------------------------------------------


def notification_id(dedupe: str) -> str:
    """The notification's id: a short hash of its dedupe key (the unique _id)."""
    return hashlib.blake2b(dedupe.encode(), digest_size=10).hexdigest()


def seq_of(created_ms: int, notification_id: str) -> str:
    """A sortable cursor: creation time, then id (ties in one millisecond)."""
    return f"{created_ms:014d}-{notification_id}"


def first_like_key(content_id: str) -> str:
    return f"first_like:{content_id}"


def milestone_key(content_id: str, metric: str, threshold: int) -> str:
    return f"milestone:{content_id}:{metric}:{threshold}"


def viral_key(content_id: str, at_ms: int) -> str:
    return f"viral:{content_id}:{at_ms // DAY_MS}"


def trending_key(content_id: str, window: str, at_ms: int) -> str:
    return f"trending:{content_id}:{window}:{at_ms // DAY_MS}"


def digest_key(content_id: str, window_start_ms: int) -> str:
    return f"digest:{content_id}:{window_start_ms}"


def folds_digest_key(content_id: str, first_fold_ms: int) -> str:
    """A digest of folded updates alone (no reactions came within the hour)."""
    return f"digest:{content_id}:folds:{first_fold_ms}"


# --- what an event means to the notifier ----------------------------------------------


def public_reaction(event: EngagementEvent) -> bool:
    """A reaction that shows in the public counts (an excluded actor's deltas carry
    only ``x_likes``): set or switched, not removed."""
    if event.kind != REACTION or event.data.get("after") is None:
        return False
    return event.deltas.get(LIKES, 0) > 0 or any(
        k.startswith(REACTION_PREFIX) and v > 0 for k, v in event.deltas.items()
    )


def raises_likes(event: EngagementEvent) -> bool:
    """A reaction event that raises the public like count (a first-like candidate)."""
    return event.kind == REACTION and event.deltas.get(LIKES, 0) > 0


def removes_like(event: EngagementEvent) -> bool:
    return event.kind == REACTION and event.deltas.get(LIKES, 0) < 0


def raises_counts(event: EngagementEvent) -> bool:
    """Any event that raises public likes or views (a restoration too): worth a
    milestone check once it has settled."""
    return event.deltas.get(LIKES, 0) > 0 or event.deltas.get(VIEWS, 0) > 0


def raises_views(event: EngagementEvent) -> bool:
    return event.kind == VIEW and event.deltas.get(VIEWS, 0) > 0


def trusted_counts(counters: Mapping[str, int]) -> dict[str, int]:
    """What milestones count: the public counts without the doubtful share
    (domain/integrity.py); excluded engagement is not in the public counts at all."""
    return {
        "likes": max(counters.get(LIKES, 0) - counters.get(DOUBTFUL_LIKES, 0), 0),
        "views": max(counters.get(VIEWS, 0) - counters.get(DOUBTFUL_VIEWS, 0), 0),
    }


# --- milestones ----------------------------------------------------------------------


def reached(value: int) -> int | None:
    """The highest threshold ``value`` has reached, if any."""
    best = None
    for t in THRESHOLDS:
        if value >= t:
            best = t
    return best


def next_milestone(value: int, mark: int) -> int | None:
    """The milestone to notify for ``value``, given ``mark``, the highest threshold
    already notified (0: none). Only the highest threshold reached is notified (a
    jump from 5 to 150 says 100, not 10 and 100), and never one at or below the
    mark, so a dip below a threshold and a new crossing say nothing again."""
    top = reached(value)
    if top is None or top <= mark:
        return None
    return top


# --- text ----------------------------------------------------------------------------


def compact(n: int) -> str:
    """10, 100, 1k, 10k, 100k, 1M, 10M (and plain numbers otherwise)."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def content_label(kind: str, content_id: str) -> str:
    return f"your {kind.lower()} {content_id}"


def actors_phrase(actors: Sequence[str], count: int) -> str:
    """'alice', 'alice and bob', 'alice, bob and carol', 'alice, bob and 41 others':
    every actor when there are at most three, else the two most recent and the rest."""
    count = max(count, len(actors))
    if count <= 0:
        return "nobody"
    if count <= DIGEST_NAMED and len(actors) >= count:
        named = list(actors[:count])
        if len(named) == 1:
            return named[0]
        return f"{', '.join(named[:-1])} and {named[-1]}"
    named = list(actors[:2])
    others = count - len(named)
    noun = "other" if others == 1 else "others"
    return f"{', '.join(named)} and {others} {noun}" if named else f"{others} {noun}"


def updates_phrase(n: int) -> str:
    return f"{n} more update" if n == 1 else f"{n} more updates"


def digest_text(label: str, actors: Sequence[str], count: int, folded: int) -> str:
    if count <= 0:
        return f"{updates_phrase(folded).capitalize()} about {label}"
    text = f"{actors_phrase(actors, count)} reacted to {label}"
    if folded:
        text += f", and {updates_phrase(folded)}"
    return text


def milestone_text(label: str, metric: str, threshold: int) -> str:
    return f"{label[0].upper()}{label[1:]} reached {compact(threshold)} {metric}"


def first_like_text(label: str, actor: str) -> str:
    return f"{actor} liked {label}: its first like"


def viral_text(label: str, ratio: float) -> str:
    return f"{label[0].upper()}{label[1:]} is going viral: {ratio:.1f}x its usual views"


_WINDOW_WORDS = {"FIVE_MINUTES": "right now", "HOUR": "this hour", "DAY": "today"}


def trending_text(label: str, kind: str, window: str, rank: int) -> str:
    when = _WINDOW_WORDS.get(window, window.lower())
    return f"{label[0].upper()}{label[1:]} is #{rank} in trending {kind.lower()}s {when}"


# --- a notification ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    dedupe: str
    creator_id: str
    content_id: str
    kind: NotificationKind
    payload: Mapping[str, Any]
    text: str
    created_at: datetime
    expires_at: datetime
    read_at: datetime | None = None

    @property
    def created_ms(self) -> int:
        return int(self.created_at.timestamp() * 1000)

    @property
    def seq(self) -> str:
        return seq_of(self.created_ms, self.id)


def make(
    dedupe: str,
    creator_id: str,
    content_id: str,
    kind: NotificationKind,
    payload: Mapping[str, Any],
    text: str,
    now: datetime,
    ttl_s: int,
) -> Notification:
    return Notification(
        id=notification_id(dedupe),
        dedupe=dedupe,
        creator_id=creator_id,
        content_id=content_id,
        kind=kind,
        payload=dict(payload),
        text=text,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
    )


# --- preferences and limits ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preferences:
    creator_id: str
    muted_kinds: frozenset[NotificationKind] = frozenset()
    muted_contents: frozenset[str] = frozenset()

    def mutes(self, kind: NotificationKind, content_id: str) -> bool:
        return kind in self.muted_kinds or content_id in self.muted_contents


class Decision(enum.StrEnum):
    SEND = "send"  # store and publish it
    FOLD = "fold"  # over a limit: into the content's next digest
    WAIT = "wait"  # a digest over a limit: stays pending until the limit allows
    DROP = "drop"  # muted: not created at all, not counted


@dataclass(frozen=True, slots=True)
class Recent:
    """The creator's notifications stored in the last hour (a sliding hour)."""

    for_content: int
    total: int


def decide(
    kind: NotificationKind,
    prefs: Preferences,
    content_id: str,
    recent: Recent,
    config: NotifyConfig,
) -> Decision:
    if prefs.mutes(kind, content_id):
        return Decision.DROP
    over = recent.for_content >= config.per_content_per_hour or recent.total >= config.per_hour
    if not over:
        return Decision.SEND
    # Digests count against the limits but are never folded away: they wait.
    return Decision.WAIT if kind is NotificationKind.REACTIONS_DIGEST else Decision.FOLD


@dataclass(frozen=True, slots=True)
class Folded:
    """A notification held back by a limit, waiting for the content's next digest."""

    notification: Notification
    digest_id: str | None = None


def folded_item(n: Notification) -> dict[str, Any]:
    """How a digest's payload lists a folded notification."""
    return {
        "id": n.id,
        "kind": n.kind.value,
        "text": n.text,
        "created_at_ms": n.created_ms,
        "payload": dict(n.payload),
    }


@dataclass(slots=True)
class DigestWindow:
    """What a closed digest window held: its distinct reactors, most recent first."""

    content_id: str
    start_ms: int
    count: int
    recent_actors: list[str] = field(default_factory=list)


def digest_payload(
    window: DigestWindow | None, folded: Sequence[Notification], folded_total: int
) -> dict[str, Any]:
    return {
        "actors": list(window.recent_actors[:DIGEST_NAMED]) if window else [],
        "count": window.count if window else 0,
        "window_start_ms": window.start_ms if window else None,
        "folded": [folded_item(n) for n in folded[:DIGEST_FOLDED_LISTED]],
        "folded_count": folded_total,
    }


def named_actors(actors: Sequence[str], count: int) -> list[str]:
    """The actors the text names: all when at most three, else the two most recent."""
    return list(actors[:count]) if count <= DIGEST_NAMED else list(actors[:2])
