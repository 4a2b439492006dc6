"""The ports a use case may need, bundled once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.admission import IngestGate
from domain.analytics import AnalyticsPorts
from domain.page_cache import PageCache, StampedCache
from domain.ports import (
    Clock,
    ContentRepository,
    CounterSource,
    CounterStore,
    EventLog,
    IdempotencyStore,
    IntegrityPorts,
    NotificationStore,
    ReactionRepository,
    SnapshotPorts,
    TierMirror,
    TrendingStore,
    ViewPorts,
)
from domain.signals import Signals
from domain.trending import Page, PageKey


@dataclass(slots=True)
class Deps:
    clock: Clock
    contents: ContentRepository
    reactions: ReactionRepository
    counters: CounterStore
    log: EventLog
    idempotency: IdempotencyStore
    # Every collection that feeds counters; a rebuild asks each of them.
    sources: list[CounterSource] = field(default_factory=list)
    views: ViewPorts | None = None
    # How long a duplicate request waits for the first one before giving up.
    idempotency_wait_s: float = 2.0
    # Creator analytics' rollups and sketches (domain/analytics_reads.py).
    analytics: AnalyticsPorts | None = None
    # Ranking signals and trending (domain/ranking.py), kept by the trending worker.
    trending: TrendingStore | None = None
    # Trending pages shared by readers for TRENDING_PAGE_CACHE_MS (absent: every
    # query reads Redis and MongoDB).
    trending_pages: PageCache[PageKey, Page] | None = None
    # Each content's ranking signals shared by readers for RANKING_SIGNALS_CACHE_MS
    # (absent: every read goes to Redis).
    ranking_signals: StampedCache[str, Signals] | None = None
    # The integrity tier of each actor, as the write paths read it (absent: all trusted).
    tiers: TierMirror | None = None
    # Count integrity's actor store, mirror and documents (domain/enforcement.py).
    integrity: IntegrityPorts | None = None
    # Creator notifications (domain/notification_reads.py), kept by the notifier worker.
    notifications: NotificationStore | None = None
    # Counter snapshots: a Redis miss restores from one instead of recounting.
    snapshots: SnapshotPorts | None = None
    # Writes wait while the in-process consumers of the event log are far behind
    # (domain/admission.py; absent: never).
    admission: IngestGate | None = None
