"""Prometheus metrics of the pipeline and the use cases (per process; scrape every
process: docs/OPERATIONS.md, "Metrics").

This module imports nothing but prometheus_client, so the use cases in domain/
may import their counters from here without pulling in any worker. Labelled
metrics that a hot path touches are bound once, here (``.labels()`` validates
and locks on every call), and every known label value is bound at import, so
each series is exported from the start at 0 and ``rate()`` sees its first
increase.
"""

from prometheus_client import Counter, Gauge, Histogram

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
    "Rules that lowered a trust the integrity worker reported to the enforcer, by rule "
    "and verdict (the tier the assessment put the actor in: trusted, doubtful, excluded)",
    ["rule", "verdict"],
)
NOTIFICATIONS = Counter(
    "likeview_notifications_total",
    "Notifications the notifier decided on, by kind and outcome (sent, folded: held "
    "back by a limit for a digest, muted, duplicate: stored before)",
    ["kind", "outcome"],
)
NOTIFIER_BATCHES = Counter("likeview_notifier_batches_total", "Batches read by the notifier")

# --- counter lag: an event's occurrence to its application in Redis (aggregator) ----

COUNTER_LAG = Histogram(
    "likeview_counter_lag_seconds",
    "From an event's occurrence (its occurred_at) to the aggregator's application of "
    "it to the Redis counters, per counted event",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)

# --- dedup: likes and views that changed nothing ---------------------------------

LIKE_NOOPS = Counter(
    "likeview_like_noops_total",
    "like/unlike requests that changed nothing (the viewer's reaction was already that)",
    ["op"],
)
LIKE_NOOP = {op: LIKE_NOOPS.labels(op=op) for op in ("like", "unlike")}
IDEMPOTENT_REPLAYS = Counter(
    "likeview_idempotent_replays_total",
    "Requests answered from their idempotency record (a retry with a requestId seen before)",
    ["op"],
)
IDEMPOTENT_REPLAY = {op: IDEMPOTENT_REPLAYS.labels(op=op) for op in ("like", "unlike")}
VIEW_EVENTS = Counter(
    "likeview_view_events_total", "View events recordView(s) decided (the dedup rate's base)"
)
VIEWS_DEDUPED = Counter(
    "likeview_view_events_deduped_total",
    "View events that could not count because a view was counted already, by dedupe "
    "scope: viewer or device (the session passed its rule inside the dedupe window of "
    "a view counted for the same viewer or device), session (the event came to a "
    "session that has counted)",
    ["scope"],
)
VIEW_DEDUPED = {s: VIEWS_DEDUPED.labels(scope=s) for s in ("viewer", "device", "session")}
VIEW_EVENTS_REPEATED = Counter(
    "likeview_view_events_repeated_total",
    "View events ignored because their session had seen their eventId (a client retry)",
)

# --- view event latency --------------------------------------------------------

# Latency buckets for ms-scale work (a like, a view batch), shared by every latency
# histogram so their quantiles compare.
MS_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
VIEW_BATCH_SECONDS = Histogram(
    "likeview_view_batch_seconds",
    "recordView(s) use case latency per call (a batch of 1 to 500 events)",
    buckets=MS_BUCKETS,
)
VIEW_EVENT_SECONDS = Histogram(
    "likeview_view_event_seconds",
    "recordView(s) latency per event: a call's time divided by its events (one "
    "observation per call)",
    buckets=MS_BUCKETS,
)

# --- cache hit rate: counter reads --------------------------------------------

COUNTER_READS = Counter(
    "likeview_counter_reads_total",
    "Contents whose counters a summary or feed read took from Redis (source=redis) or "
    "had to recount from MongoDB and install (source=recount), or restored from a "
    "counter snapshot (source=snapshot)",
    ["source"],
)
COUNTER_READS_REDIS = COUNTER_READS.labels(source="redis")
COUNTER_READS_RECOUNT = COUNTER_READS.labels(source="recount")
COUNTER_READS_SNAPSHOT = COUNTER_READS.labels(source="snapshot")

# --- reconciliation drift --------------------------------------------------------

RECONCILER_DRIFT = Counter(
    "likeview_reconciler_drift_total",
    "Absolute drift the reconciler repaired: the sum over repaired fields of "
    "|Redis value - recount| (kind=counters), or of the unique-viewer estimate's miss "
    "(kind=unique_viewers); counters missing from Redis are not drift "
    "(likeview_reconciler_missing_total)",
    ["kind"],
)
RECONCILER_DRIFT_COUNTERS = RECONCILER_DRIFT.labels(kind="counters")
RECONCILER_DRIFT_UNIQUES = RECONCILER_DRIFT.labels(kind="unique_viewers")
RECONCILER_MISSING = Counter(
    "likeview_reconciler_missing_total",
    "Contents the reconciler found without counters in Redis and installed from a recount",
)
RECONCILER_LAST_DRIFT = Gauge(
    "likeview_reconciler_last_drift",
    "Absolute drift (as likeview_reconciler_drift_total, both kinds) repaired by the "
    "last reconciler pass of this process",
)

# --- event-log lag, per consumer group and partition (workers/event_log_lag.py) ----

EVENT_LOG_PENDING = Gauge(
    "likeview_event_log_pending_entries",
    "Entries delivered to a consumer of the group and not acknowledged yet",
    ["group", "partition"],
)
EVENT_LOG_UNDELIVERED = Gauge(
    "likeview_event_log_undelivered_entries",
    "Entries of the partition's stream after the group's last-delivered id (XINFO "
    "GROUPS lag; NaN when Redis cannot tell, after a trim or deletion)",
    ["group", "partition"],
)
EVENT_LOG_UNDELIVERED_AGE = Gauge(
    "likeview_event_log_undelivered_age_seconds",
    "Age of the oldest entry not yet delivered to the group (from its stream id); 0 "
    "when the group has read everything",
    ["group", "partition"],
)
EVENT_LOG_PENDING_AGE = Gauge(
    "likeview_event_log_pending_age_seconds",
    "Age of the oldest entry delivered to the group and not acknowledged (from its "
    "stream id); 0 when nothing is pending",
    ["group", "partition"],
)
EVENT_LOG_LAG_READ_AT = Gauge(
    "likeview_event_log_lag_read_timestamp_seconds",
    "When this process last read the event-log lag (Unix time); stale means the probe is failing",
)

# --- ingest admission (domain/admission.py; embedded mode) --------------------------

INGEST_GATE_CLOSED = Gauge(
    "likeview_ingest_gate_closed",
    "1 while the write paths wait because an in-process consumer of the event log is "
    "more than INGEST_MAX_LAG_MS behind, else 0",
)
INGEST_GATE_LAG = Gauge(
    "likeview_ingest_gate_lag_seconds",
    "The gate's last sample: the age of the oldest event waiting for any in-process consumer group",
)
INGEST_GATE_WAITS = Counter(
    "likeview_ingest_gate_waits_total",
    "Writes (a like, an unlike, a recordViews batch) that found the gate closed and waited",
)
INGEST_GATE_WAIT_SECONDS = Histogram(
    "likeview_ingest_gate_wait_seconds",
    "How long a write waited at the closed gate (at most INGEST_MAX_WAIT_MS)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)

# --- readiness (GET /readyz's checks, also run on every scrape of /metrics) --------

READY = Gauge(
    "likeview_ready",
    "1 when the dependency answered this process's last readiness check, else 0",
    ["dependency"],
)
READY_MONGODB = READY.labels(dependency="mongodb")
READY_REDIS = READY.labels(dependency="redis")
