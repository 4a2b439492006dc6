"""Prometheus metrics of the pipeline (per process; scrape every process)."""

from prometheus_client import Counter

EVENTS_APPLIED = Counter(
    "likeview_events_applied_total", "Events read by the aggregator (counted or not)"
)
BATCHES = Counter("likeview_aggregator_batches_total", "Batches applied by the aggregator")
OUTBOX_REPUBLISHED = Counter(
    "likeview_outbox_republished_total", "Events republished from MongoDB outboxes"
)
RECONCILER_REPAIRS = Counter(
    "likeview_reconciler_repairs_total", "Contents whose Redis counters were repaired"
)
ANALYTICS_EVENTS = Counter(
    "likeview_analytics_events_total", "Events the analytics worker folded into rollups"
)
ANALYTICS_SKIPPED = Counter(
    "likeview_analytics_skipped_total",
    "Events the analytics worker dropped as applied before (redelivered or replayed)",
)
ANALYTICS_BATCHES = Counter("likeview_analytics_batches_total", "Batches applied by analytics")
ANALYTICS_REDONE = Counter(
    "likeview_analytics_redone_total",
    "Analytics bucket writes redone token by token (the bucket had seen part of a batch)",
)
TRENDING_EVENTS = Counter(
    "likeview_trending_events_total",
    "Events the trending worker applied to ranking signals and trend scores",
)
TRENDING_SKIPPED = Counter(
    "likeview_trending_skipped_total",
    "Events the trending worker dropped: applied before (redelivered or replayed) "
    "or of unregistered contents",
)
TRENDING_BATCHES = Counter("likeview_trending_batches_total", "Batches applied by trending")
INTEGRITY_EVENTS = Counter(
    "likeview_integrity_events_total",
    "Events the integrity worker recorded into its features (not recorded before)",
)
INTEGRITY_ASSESSMENTS = Counter(
    "likeview_integrity_assessments_total",
    "Actors the integrity worker assessed, by the tier of their trust",
    ["tier"],
)
INTEGRITY_FLAGS = Counter(
    "likeview_integrity_flags_total",
    "Rules that lowered a trust the integrity worker reported to the enforcer",
    ["rule"],
)
NOTIFICATIONS = Counter(
    "likeview_notifications_total",
    "Notifications the notifier decided on, by kind and outcome (sent, folded: held "
    "back by a limit for a digest, muted, duplicate: stored before)",
    ["kind", "outcome"],
)
NOTIFIER_BATCHES = Counter("likeview_notifier_batches_total", "Batches read by the notifier")
