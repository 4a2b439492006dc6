"""The outside world as the use cases see it: small protocols, one adapter each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.contents import Content
from domain.events import EngagementEvent
from domain.idempotency import IdempotencyRecord
from domain.integrity import Bars, Tier
from domain.integrity_rules import ActorAssessment
from domain.notifications import Notification, Preferences
from domain.notifications import Recent as RecentCount
from domain.reactions import ReactionType
from domain.signals import RawSignals, Sums
from domain.trending import Ranked, TrendWindow
from domain.view_policy import PolicyBook
from domain.view_sessions import ViewSession


@dataclass(frozen=True, slots=True)
class ReactionRecord:
    content_id: str
    user_id: str
    reaction: ReactionType | None  # None: removed
    version: int
    updated_at: datetime
    # Events of this record not yet known to be archived (the outbox).
    pending: tuple[EngagementEvent, ...] = ()
    # The tier its actor had when it was last written (domain/integrity.py).
    tier: Tier = Tier.TRUSTED
    # (requestId, fingerprint) of the like or unlike that wrote this version: a retry
    # replays from it when Redis lost or never held the idempotency record.
    request: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class CounterReading:
    counters: dict[str, int]
    unique_viewers: int
    # Event ids asked about that the aggregator has already applied.
    applied: frozenset[str] = frozenset()
    # Events up to this time are included by the last recount.
    asof_ms: int = 0
    # When the aggregator last changed these counters.
    last_ms: int = 0
    # Grows with every change of these counters: orders live pushes.
    version: int = 0


class Clock(Protocol):
    def now(self) -> datetime: ...


class ContentRepository(Protocol):
    async def get_many(self, content_ids: Sequence[str]) -> dict[str, Content]: ...

    async def insert(self, content: Content) -> Content | None:
        """Insert; when the id exists already, return the stored content instead."""

    async def insert_many(self, contents: Sequence[Content]) -> dict[str, Content]:
        """Insert all at once; returns the already registered ones among them."""
        ...

    async def ids_after(self, after: str | None, limit: int) -> list[str]: ...


class ReactionRepository(Protocol):
    async def get(self, content_id: str, user_id: str) -> ReactionRecord | None: ...

    async def save(
        self, record: ReactionRecord, expected_version: int, event: EngagementEvent
    ) -> bool:
        """Write the new state and its outbox event in one atomic document change,
        only if the stored version is still ``expected_version`` (0 = absent)."""

    async def viewer_reactions(
        self, user_id: str, content_ids: Sequence[str]
    ) -> dict[str, ReactionType]: ...

    async def reactors(
        self,
        content_id: str,
        reaction: ReactionType | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[ReactionRecord]: ...


class CounterSource(Protocol):
    """A MongoDB collection that can recount the counters it feeds."""

    async def recount(self, content_ids: Sequence[str]) -> dict[str, dict[str, int]]: ...

    async def unique_members(self, content_ids: Sequence[str]) -> dict[str, list[str]]:
        """Exact unique viewers per content: one query for the whole page."""


class ReconcileQueue(Protocol):
    """What the reconciler checks next, shared by every process that reconciles."""

    async def take_touched(self, settled_before_ms: int, limit: int) -> list[str]:
        """Up to about ``limit`` contents changed no later than ``settled_before_ms``,
        removed from the queue (a later change queues them again)."""

    async def sweep_position(self) -> str | None:
        """The last content id the sweep of all contents checked (None: from the start)."""

    async def save_sweep_position(self, after: str | None) -> None: ...


class RetentionStore(Protocol):
    """Removes old documents a page at a time; each returns how many went."""

    async def expire_raw_views(self, before: datetime, limit: int) -> int: ...

    async def expire_events(self, before: datetime, limit: int) -> int: ...

    async def fold_sessions(self, before: datetime, limit: int) -> int:
        """Sessions idle since before ``before``; counted ones are kept in a recount's
        truth (folded into per-content tallies) before they go."""

    async def expire_analytics(self, now: datetime, limit: int) -> int:
        """Analytics buckets past their own retention (not the window's)."""

    async def expire_webhook_deliveries(self, before: datetime, limit: int) -> int:
        """Finished webhook deliveries (delivered, failed, abandoned) queued before
        ``before``: what a real server's TTL index expires."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    doc_id: Any  # the document whose outbox holds the event
    event: EngagementEvent


class Outbox(Protocol):
    async def pending(self, older_than: datetime, limit: int) -> list[OutboxEntry]: ...

    async def prune(self, entries: Sequence[OutboxEntry]) -> int: ...


class EventLog(Protocol):
    async def append(self, events: Sequence[EngagementEvent]) -> None: ...


class EventArchive(Protocol):
    async def store(self, events: Sequence[EngagementEvent]) -> int: ...

    async def store_raw_views(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Raw view events as ``EngagementEvent.to_dict()`` dicts, as the log carries
        them (decoding each into an event only to encode it again cost the archiver
        most of its time)."""

    async def existing(self, event_ids: Sequence[str]) -> set[str]: ...


class CounterStore(Protocol):
    async def read(
        self, content_ids: Sequence[str], applied_probe: Sequence[EngagementEvent] = ()
    ) -> dict[str, CounterReading | None]:
        """Counters per content in one round trip; None where Redis has none.
        ``applied_probe`` events are checked for having been applied already."""

    async def apply(
        self, partition: int, events: Sequence[EngagementEvent]
    ) -> dict[str, CounterReading]:
        """Apply events effectively once; returns the new counters of changed contents."""

    async def install(
        self,
        content_id: str,
        counters: Mapping[str, int],
        unique_members: Sequence[str],
        asof_ms: int,
        *,
        replace: bool,
    ) -> bool:
        """Set counters from a recount. Events older than ``asof_ms`` are then
        treated as included. ``replace=False`` leaves existing counters alone."""

    async def install_zeroed(self, content_ids: Sequence[str]) -> None:
        """Zeroed counters for new contents, as of 0, in one round trip; existing
        counters are left alone."""


class IdempotencyStore(Protocol):
    async def begin(self, user_id: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Claim the key; returns the existing record instead when it was claimed before."""

    async def get(self, user_id: str, key: str) -> IdempotencyRecord | None: ...

    async def complete(
        self, user_id: str, key: str, fingerprint: str, result: Mapping[str, Any]
    ) -> None: ...

    async def release(self, user_id: str, key: str) -> None: ...


class Publisher(Protocol):
    async def publish(self, messages: Mapping[str, str]) -> None:
        """Publish channel -> message, one message per channel."""


@dataclass(frozen=True, slots=True)
class TieredSession:
    """A counted view session as re-tiering sees it."""

    session_id: str
    content_id: str
    viewer_key: str
    version: int
    tier: Tier
    counted_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredSession:
    session: ViewSession
    version: int


@dataclass(frozen=True, slots=True)
class DedupeMark:
    counted_at: datetime
    # The session that counted: its own later events are not its duplicates.
    session_id: str


class ViewSessionRepository(Protocol):
    async def get_many(self, session_ids: Sequence[str]) -> dict[str, StoredSession]: ...

    async def save_many(
        self, writes: Sequence[tuple[ViewSession, int, list[EngagementEvent]]]
    ) -> set[str]:
        """Write each session (with its new outbox events) if its stored version is
        still the given one (0 = new). Returns the ids that changed under us."""


class ViewMarks(Protocol):
    async def get_many(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], DedupeMark]: ...

    async def claim_many(
        self, claims: Sequence[tuple[str, str, str, datetime, timedelta]]
    ) -> set[str]:
        """Claim (content, key) for a session for a window; returns the session ids
        whose claim was lost to another session."""


@dataclass(slots=True)
class ViewPorts:
    sessions: ViewSessionRepository
    marks: ViewMarks
    policies: PolicyBook


class TrendingStore(Protocol):
    """What the ranking reads need of the trending worker's store."""

    async def top(self, window: TrendWindow, kind: str, region: str, first: int) -> list[Ranked]:
        """The ``first`` highest frame scores of one (window, kind, region) set."""

    async def raw_signals(self, content_ids: Sequence[str]) -> dict[str, RawSignals]:
        """Per content, what ranking signals are computed from (one round trip)."""

    async def signal_sums(self, content_ids: Sequence[str], now_ms: int) -> dict[str, Sums]:
        """Per content, domain.signals.sums of what it holds at ``now_ms`` (one round
        trip); the reads take these, not the whole minute ring."""


# --- count integrity (domain/enforcement.py) ---------------------------------------


@dataclass(frozen=True, slots=True)
class ActorRecord:
    """An actor ("u:<user>" or "d:<device>") as integrity sees it."""

    actor: str
    trust: float  # the automatic score, 0..1 (1: nothing against it)
    tier: Tier  # what counts: from the score, or from the verdict
    verdict: str  # Verdict value: AUTO, BOT or HUMAN
    reasons: tuple[str, ...]
    evidence: Mapping[str, int | float | str]
    updated_at: datetime | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One integrity decision, appended and never changed."""

    entry_id: str  # sorts by time
    actor: str
    rule: str  # the reasons that lowered the trust, or "verdict"
    evidence: Mapping[str, int | float | str]
    trust_before: float
    trust_after: float
    tier_before: Tier
    tier_after: Tier
    verdict: str
    note: str | None
    by: str  # "integrity" (the worker) or the admin's user id
    at: datetime


class ActorStore(Protocol):
    async def get_many(self, actors: Sequence[str]) -> dict[str, ActorRecord]: ...

    async def save(self, record: ActorRecord, audit: AuditEntry | None) -> None:
        """Write the actor's state and append its audit entry."""

    async def cases(self, first: int, before: str | None) -> list[AuditEntry]:
        """Audit entries newest first, older than the entry id ``before``."""

    async def not_trusted(self, after: str | None, limit: int) -> list[ActorRecord]:
        """Actors whose tier is not trusted, by actor, a page at a time."""


class TierMirror(Protocol):
    """The tiers the write paths read (Redis), mirrored from the actor store."""

    async def get_many(self, actors: Sequence[str]) -> dict[str, Tier]:
        """Absent actors are trusted."""

    async def set_many(self, tiers: Mapping[str, Tier]) -> None: ...


class Retiering(Protocol):
    """The documents whose counting follows an actor's tier."""

    async def reactions_of(
        self, user_id: str, after: str | None, limit: int
    ) -> list[ReactionRecord]: ...

    async def reaction(self, content_id: str, user_id: str) -> ReactionRecord | None: ...

    async def retier_reaction(
        self, record: ReactionRecord, tier: Tier, event: EngagementEvent | None
    ) -> bool: ...

    async def counted_sessions_of(
        self, viewer_key: str, after: str | None, limit: int
    ) -> list[TieredSession]: ...

    async def retier_sessions(
        self, moves: Sequence[tuple[TieredSession, EngagementEvent]], tier: Tier
    ) -> set[str]:
        """Move sessions into ``tier``, each with its event, guarded by its version;
        returns the ids that changed meanwhile."""


@dataclass(frozen=True, slots=True)
class IntegrityPorts:
    actors: ActorStore
    mirror: TierMirror
    documents: Retiering
    bars: Bars = field(default_factory=Bars)
    # How long a write may take from reading an actor's tier to storing a document
    # in it: re-tiering sweeps the actor's documents again after this long.
    settle_s: float = 2.0


class Enforcer(Protocol):
    """Acts on the integrity worker's assessments (exclusion and restoration of an
    actor's engagement in public counts): told only of actors whose trust changed
    by more than 0.01 or crossed a bar (domain.integrity_rules)."""

    async def assess(self, assessments: Sequence[ActorAssessment], now: datetime) -> None: ...

    async def settled(self) -> None:
        """Return when the follow-up work of earlier ``assess`` calls is done."""

    def close(self) -> None:
        """Drop follow-up work not done yet (the worker is stopping)."""


# --- creator notifications (domain/notifications.py, workers/notifier.py) -------------


class NotificationStore(Protocol):
    """Stored notifications (unique by id: exactly once), held-back (folded) ones,
    per-content marks of what was notified, and creators' preferences."""

    async def insert(self, notification: Notification) -> bool:
        """Store it; False when its id is stored already (nothing changed)."""

    async def known(self, ids: Sequence[str]) -> set[str]:
        """The ids stored as notifications or held back as folded ones."""

    async def recent(self, creator_id: str, content_id: str, since_ms: int) -> RecentCount:
        """The creator's notifications created at or after ``since_ms``: for the
        content, and in total."""

    async def fold(self, notification: Notification) -> bool:
        """Hold it back for the content's next digest; False when held already."""

    async def folds_for(
        self, creator_id: str, content_id: str, digest_id: str, limit: int
    ) -> tuple[list[Notification], int]:
        """Held-back ones of a content not yet in a digest, or already given to
        ``digest_id`` (a retried digest sees the same ones): the first ``limit``
        oldest first, and how many in all."""

    async def give_folds(self, creator_id: str, content_id: str, digest_id: str) -> None:
        """The content's held-back ones not yet in a digest now belong to ``digest_id``."""

    async def stale_folds(self, before: datetime, limit: int) -> list[tuple[str, str, int]]:
        """(creator, content, oldest fold ms) of contents whose held-back ones have
        waited since before ``before`` with no digest."""

    async def marks(self, content_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per content, what was notified already (milestone thresholds, first like)."""

    async def raise_marks(self, content_id: str, marks: Mapping[str, int]) -> None:
        """Raise marks to at least these values (never lowers one)."""

    async def preferences(self, creator_id: str) -> Preferences: ...

    async def save_preferences(self, prefs: Preferences) -> Preferences: ...

    async def page(
        self, creator_id: str, first: int, before_seq: str | None, unread_only: bool
    ) -> list[Notification]:
        """Newest first, older than ``before_seq``."""

    async def after(self, creator_id: str, after_seq: str, limit: int) -> list[Notification]:
        """Oldest first, newer than ``after_seq`` (the subscription's catch-up)."""

    async def latest_seq(self, creator_id: str) -> str | None: ...

    async def get(self, notification_id: str) -> Notification | None: ...

    async def unread_count(self, creator_id: str) -> int: ...

    async def mark_read(
        self, creator_id: str, ids: Sequence[str], up_to_seq: str | None, now: datetime
    ) -> int:
        """Mark the creator's unread ones among ``ids``, and all at or older than
        ``up_to_seq``, read; how many changed."""

    async def expire(self, now: datetime, limit: int) -> int:
        """Remove notifications past ``expires_at`` (the embedded mode has no TTL index)."""


# --- counter snapshots (domain/counter_snapshots.py) ---------------------------


@dataclass(frozen=True, slots=True)
class Capture:
    """A content's counters and HyperLogLog as Redis held them at one instant."""

    token: str
    counters: dict[str, int]
    registers: bytes  # the HyperLogLog's raw encoding (b"" when it has none)
    asof_ms: int  # the counters' last recount: events up to it are in them


@dataclass(frozen=True, slots=True)
class CounterSnapshot:
    content_id: str
    counters: dict[str, int]
    registers: bytes
    # Holds the effect of exactly the events that occurred at or before this.
    watermark_ms: int
    taken_ms: int
    version: int = 1  # of the document's format


class CounterCapture(Protocol):
    """Redis: capture counters for a snapshot, install one back, changed contents."""

    async def capture(self, content_id: str) -> Capture | None:
        """None when Redis holds no counters for it. Opens a window in which applied
        events are noted, closed by ``finish``."""

    async def finish(
        self, content_id: str, token: str, event_ids: Sequence[str]
    ) -> frozenset[str] | None:
        """Of ``event_ids``, those applied before the capture; None when the capture
        can't tell any more (counters replaced, window lapsed, another capture)."""

    async def install(
        self,
        content_id: str,
        counters: Mapping[str, int],
        registers: bytes,
        members: Sequence[str],
        asof_ms: int,
        *,
        replace: bool,
    ) -> int | None:
        """Counters and HyperLogLog (registers, then members added); the unique
        viewers, or None when counters existed and ``replace`` is False."""

    async def take_changed(self, before_ms: int, limit: int) -> list[str]:
        """Up to about ``limit`` contents changed since they were last taken."""

    async def requeue(self, content_ids: Sequence[str], at_ms: int) -> None: ...


class CounterSnapshotStore(Protocol):
    async def get_many(self, content_ids: Sequence[str]) -> dict[str, CounterSnapshot]: ...

    async def save(self, snapshot: CounterSnapshot) -> bool:
        """Store unless a snapshot with a later watermark is there already."""


class DurableEvents(Protocol):
    """The counted events MongoDB holds (the event log may be gone with Redis)."""

    async def after(self, content_id: str, after_ms: int) -> list[EngagementEvent]:
        """Every event of the content that changes counters and occurred after
        ``after_ms``, each once."""


@dataclass(slots=True)
class SnapshotPorts:
    capture: CounterCapture
    store: CounterSnapshotStore
    events: DurableEvents
    # Events older than this (ms before now) may be gone from MongoDB (a TTL on
    # the archive): a snapshot whose watermark is older is not restored from.
    horizon_ms: int | None = None
