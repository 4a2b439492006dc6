"""Likeview's composition root: settings, resources, app factory, workers, CLI.

python main.py serve [--host H] [--port P] [--workers N]
                                              the API (embedded backends unless URLs are set)
python main.py worker                         the workers (aggregator, archiver, outbox relay,
                                              reconciler, analytics, session closer, trending,
                                              integrity, notifier)
python main.py token --sub USER [--role R]    a development bearer token
python main.py schema                         print the GraphQL SDL
python main.py analytics rebuild [--content ID] [--since DATE]   analytics from the archive
python main.py trending rebuild               trending and ranking signals from the archive
python main.py export events --since T [--until T] --out DIR     the archive as Parquet
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import mimetypes
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import structlog
from broadcaster import Broadcast
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

import domain.integrity_rules
import domain.view_policy
import domain.webhooks
import tracing
import transport.dev_token
from domain.admission import IngestGate
from domain.analytics import AnalyticsPorts
from domain.deps import Deps
from domain.enforcement import Enforcement, restore_mirror
from domain.errors import ContentNotFound
from domain.identity import AddressHasher
from domain.integrity import Bars
from domain.integrity_rules import IntegrityRules
from domain.notifications import NotifyConfig
from domain.page_cache import PageCache, StampedCache
from domain.ports import IntegrityPorts, SnapshotPorts, ViewPorts
from domain.rate_limit_fallback import FallbackRateLimits, LocalRateLimits
from domain.rate_limits import DEFAULTS as RATE_DEFAULTS
from domain.rate_limits import Action, Rate, RateLimiter, Scope, parse_rate
from domain.view_policy import PolicyBook
from domain.webhooks import WebhookPorts
from resolvers.auth import DEFAULT_MAX_LIFETIME_S, DEFAULT_TTL_S, TokenVerifier, issue_token
from resolvers.context import Services
from schema.documents import DocumentPolicy
from schema.limits import Limits
from schema.root import build_schema
from storage.clock import SystemClock
from storage.embedded_mongo import open_embedded_client
from storage.keys import Keys
from storage.mongo import ensure_indexes, open_client, ping, unreachable
from storage.mongo_analytics import MongoAnalytics, ensure_analytics_indexes
from storage.mongo_contents import MongoContents
from storage.mongo_counter_snapshots import MongoCounterSnapshots
from storage.mongo_durable_events import MongoDurableEvents
from storage.mongo_events import MongoEventArchive
from storage.mongo_integrity import MongoActors, MongoRetiering, ensure_integrity_indexes
from storage.mongo_notifications import MongoNotifications, ensure_notification_indexes
from storage.mongo_outbox import MongoOutbox
from storage.mongo_reactions import MongoReactions
from storage.mongo_retention import MongoRetention
from storage.mongo_view_sessions import MongoViewSessions
from storage.mongo_webhooks import MongoWebhooks, ensure_webhook_indexes
from storage.outages import register_drivers
from storage.redis_analytics import RedisAnalytics
from storage.redis_counter_snapshots import RedisCounterSnapshots
from storage.redis_counters import RedisCounters
from storage.redis_idempotency import RedisIdempotency
from storage.redis_integrity import RedisIntegrity
from storage.redis_notifications import RedisNotifyState
from storage.redis_persisted_queries import RedisPersistedQueries
from storage.redis_publisher import RedisPublisher
from storage.redis_rate_limits import RedisAddressSalts, RedisRateLimits
from storage.redis_reconcile_queue import RedisReconcileQueue
from storage.redis_stream import (
    CONSUMER_GROUPS,
    RedisEventConsumer,
    RedisEventLag,
    RedisEventLog,
)
from storage.redis_tiers import RedisTierMirror
from storage.redis_trending import RedisTrending
from storage.redis_view_marks import RedisViewMarks
from subscriptions.hub import LiveHub
from subscriptions.publisher import HubPublisher
from subscriptions.redis_backend import FixedRedisBackend
from transport.body_limit import BodyLimit
from transport.client_address import hide_client_addresses
from transport.graphiql import ROUTE as GRAPHIQL_ROUTE
from transport.graphiql import GraphiQLPage
from transport.graphql_app import GraphQLApp
from transport.proxy_headers import ProxyHeaders
from transport.region import IPNetwork, parse_trusted_proxies
from transport.request_id import RequestId
from workers.aggregator import Aggregator
from workers.analytics import AnalyticsWorker
from workers.analytics_rebuild import rebuild as rebuild_analytics
from workers.archiver import Archiver
from workers.event_log_lag import EventLogLagProbe
from workers.export import add_export_parser, run_export
from workers.ingest_gate import IngestGateSampler
from workers.integrity import IntegrityWorker
from workers.loop_lag import probing
from workers.metrics import READY_MONGODB, READY_REDIS
from workers.notifier import NotifierWorker
from workers.outbox_relay import OutboxRelay
from workers.reconciler import Reconciler
from workers.retention import Retention
from workers.session_closer import SessionCloser
from workers.snapshotter import Snapshotter
from workers.supervise import supervised
from workers.trending import TrendingWorker
from workers.trending_rebuild import rebuild as rebuild_trending
from workers.webhooks import DeploymentEndpoint, WebhookSender

log = structlog.get_logger("likeview")

DEV_JWT_SECRET = "likeview-dev-secret-change-me-0123456789abcdef"
# The reference app's built assets (web/app; committed, so `make run` needs no npm).
APP_ASSETS = Path(__file__).resolve().parent / "web" / "app" / "dist"
# StaticFiles types files by mimetypes, whose table comes partly from the host's
# /etc/mime.types: the player's clip must be video/webm on a slim image too.
mimetypes.add_type("video/webm", ".webm")
# How long a browser may reuse a CORS preflight answer.
CORS_MAX_AGE_S = 600
LIVE_SUBSCRIBERS = Gauge("likeview_live_subscribers", "Open live-counter subscriptions")


# --- settings -------------------------------------------------------------------


class Settings(BaseSettings):
    """Environment variables, documented in the README's configuration table."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    mongodb_url: str | None = None
    mongodb_db: str = "likeview"
    # How long a MongoDB operation waits for a server, and start-up for the first answer.
    mongodb_timeout_s: float = Field(5.0, gt=0, le=60)
    redis_url: str | None = None
    # A seed node of a Redis Cluster (storage/redis_cluster.py); exclusive with REDIS_URL.
    redis_cluster_url: str | None = None
    # Redis Sentinel (storage/redis_sentinel.py): comma-separated host:port of the
    # sentinels and the monitored master's name; exclusive with REDIS_URL.
    redis_sentinels: str | None = None
    redis_sentinel_master: str | None = None
    redis_sentinel_password: str | None = None
    # Live pub/sub on another Redis than REDIS_URL's (default: the same one).
    redis_pubsub_url: str | None = None
    # A silent pub/sub connection is detected within this (subscriptions/redis_backend.py).
    live_pubsub_health_s: float = Field(5.0, ge=0.2, le=300)
    # The workers this process runs (comma-separated names; empty: all of them).
    workers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jwt_secret: str | None = None
    # A rotation (README, Production): secrets that still verify tokens, comma-separated;
    # JWT_SECRET alone signs.
    jwt_previous_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jwt_require_exp: bool = True
    jwt_max_lifetime_s: int = Field(DEFAULT_MAX_LIFETIME_S, gt=0)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    key_prefix: str = "lv"
    stream_partitions: int = Field(4, ge=1, le=1024)
    live_max_updates_per_second: float = Field(4.0, gt=0)
    idempotency_ttl_s: int = Field(25 * 3600, ge=24 * 3600)
    event_dedupe_horizon_s: int = Field(3600, ge=60)
    outbox_grace_s: float = Field(10.0, gt=0)
    reconcile_interval_s: float = Field(300.0, gt=0)
    # Period of the snapshotter (workers/snapshotter.py); with a shared Redis only.
    counter_snapshot_interval_s: float = Field(60.0, gt=0)
    log_level: str = "INFO"
    log_json: bool = False
    # One log line per HTTP request costs about 35-40 µs of CPU through the
    # structlog formatter, some 3% of a like mutation's: a proxy or /metrics
    # often makes it redundant.
    access_log: bool = True
    # Traces (tracing/, docs/OPERATIONS.md "Traces"): on when either is set.
    otel_exporter_otlp_endpoint: str | None = None
    otel_traces_exporter: str | None = None
    otel_service_name: str = "likeview"
    view_policies_path: str | None = None
    # The integrity rules file (docs/INTEGRITY.md); default: the shipped one.
    integrity_rules_path: str | None = None
    # Off: stock strawberry and graphql-core everywhere (README, Version pins).
    fast_paths: bool = True
    # Automatic persisted queries: how long a registered text outlives its last use.
    apq_ttl_s: int = Field(24 * 3600, ge=60)
    # Development conveniences; production should turn both off (docs/SECURITY.md).
    graphiql: bool = True
    introspection: bool = True
    # Hostile input (docs/SECURITY.md): what one request may be and cost.
    max_request_bytes: int = Field(1024 * 1024, ge=64 * 1024)
    max_query_tokens: int = Field(2_000, ge=500)
    max_query_depth: int = Field(15, ge=1)
    max_query_aliases: int = Field(30, ge=0)
    max_query_cost: int = Field(100_000, ge=100)
    max_list_items: int = Field(2_000, ge=100)
    max_fragment_nesting: int = Field(20, ge=1)
    max_selections: int = Field(200, ge=10)
    document_cache_bytes: int = Field(1024 * 1024, ge=0)
    document_cache_max_query_bytes: int = Field(16 * 1024, ge=0)
    # Embedded mode only (MONGODB_URL unset): how long the in-process store keeps raw
    # view events, archived events and ended view sessions (storage/mongo_retention.py).
    embedded_retention_s: float = Field(300.0, ge=60)
    # Real MongoDB only: TTL indexes expire raw view events, archived events and
    # uncounted view sessions after this long; unset keeps them (storage/mongo.py).
    archive_ttl_s: int | None = Field(None, ge=3600)
    # The viewer's region for analytics (transport/region.py): a header a proxy in
    # front sets (e.g. CloudFront-Viewer-Country), believed only from TRUSTED_PROXIES
    # (comma-separated IPs/CIDRs, the direct peers allowed to set it).
    client_region_header: str | None = None
    trusted_proxies: str = ""
    # Embedded mode (workers in the API process): writes wait while any in-process
    # consumer of the event log is this far behind, a batch of 100 events at most
    # INGEST_MAX_WAIT_MS and a smaller write its share (domain/admission.py); 0 turns
    # the gate off.
    ingest_max_lag_ms: int = Field(2_000, ge=0)
    ingest_max_wait_ms: int = Field(2_000, gt=0)
    # A view session without events for this long has ended (workers/session_closer.py).
    session_idle_s: float = Field(1800.0, gt=0)
    # uvicorn's proxy headers (`serve`): X-Forwarded-For is believed only from these
    # peers (comma-separated IPs/CIDRs, or "*"). Too wide, and clients pick their own
    # address (docs/SECURITY.md, Abuse limits).
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # Abuse limits (domain/rate_limits.py): "PER_MINUTE:BURST" per action and scope.
    rate_limits: bool = True
    rate_limit_like_user: str = str(RATE_DEFAULTS[(Action.LIKE, Scope.USER)])
    rate_limit_like_device: str = str(RATE_DEFAULTS[(Action.LIKE, Scope.DEVICE)])
    rate_limit_like_address: str = str(RATE_DEFAULTS[(Action.LIKE, Scope.ADDRESS)])
    rate_limit_unlike_user: str = str(RATE_DEFAULTS[(Action.UNLIKE, Scope.USER)])
    rate_limit_unlike_device: str = str(RATE_DEFAULTS[(Action.UNLIKE, Scope.DEVICE)])
    rate_limit_unlike_address: str = str(RATE_DEFAULTS[(Action.UNLIKE, Scope.ADDRESS)])
    rate_limit_view_user: str = str(RATE_DEFAULTS[(Action.VIEW, Scope.USER)])
    rate_limit_view_device: str = str(RATE_DEFAULTS[(Action.VIEW, Scope.DEVICE)])
    rate_limit_view_address: str = str(RATE_DEFAULTS[(Action.VIEW, Scope.ADDRESS)])
    # Creator notifications (docs/NOTIFICATIONS.md).
    notification_ttl_s: int = Field(90 * 86_400, ge=3600)
    notify_digest_s: float = Field(600.0, gt=0)
    notify_per_content_per_hour: int = Field(3, ge=1)
    notify_per_hour: int = Field(20, ge=1)
    notify_viral_ratio: float = Field(5.0, gt=1)
    # How long readers share a trending page (domain/page_cache.py); 0 turns it off.
    trending_page_cache_ms: int = Field(1000, ge=0, le=60_000)
    # How long readers share a content's ranking signals, and how many contents'
    # (domain/ranking.py signals_of); 0 turns it off.
    ranking_signals_cache_ms: int = Field(1000, ge=0, le=60_000)
    ranking_signals_cache_entries: int = Field(10_000, ge=1)
    # Parsed analytics buckets a reader keeps, checked against each bucket's
    # version (storage/bucket_cache.py); 0 turns it off.
    analytics_bucket_cache: int = Field(20_000, ge=0)
    # The integrity worker's promise to exclude within this delay: milestones and
    # first likes are judged only after it.
    integrity_settle_s: float = Field(60.0, ge=0)
    # Redis connections per process, and how long a command waits for one when all
    # are busy (storage/redis_client.py).
    redis_max_connections: int = Field(256, ge=8)
    redis_pool_wait_s: float = Field(5.0, gt=0)
    # A Redis reply that takes longer means Redis is down for this request
    # (UNAVAILABLE, or the write paths' fallbacks: docs/OPERATIONS.md, Failure drills).
    # Above the workers' longest blocking read (1 s), which shares the pool.
    redis_socket_timeout_s: float = Field(5.0, ge=1.5, le=60)
    redis_connect_timeout_s: float = Field(2.0, gt=0, le=60)
    # Notification webhooks (docs/WEBHOOKS.md). The deployment's endpoint gets every
    # notification; its secret is required with it.
    notify_webhook_url: str | None = None
    notify_webhook_secret: str | None = None
    # One attempt's whole time: connect, send, answer.
    webhook_timeout_s: float = Field(10.0, gt=0, le=60)
    # Accept creators' http:// and loopback URLs (tests, development). Never in production.
    webhook_allow_insecure_local: bool = False
    # `main.py worker` serves its Prometheus metrics on this port when set (one port
    # per process: docs/OPERATIONS.md, "Metrics"); API processes serve GET /metrics.
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    @model_validator(mode="after")
    def _webhook_deployment(self) -> Settings:
        domain.webhooks.check_deployment(self.notify_webhook_url, self.notify_webhook_secret)
        return self

    def notify_config(self) -> NotifyConfig:
        return NotifyConfig(
            ttl_s=self.notification_ttl_s,
            digest_s=self.notify_digest_s,
            per_content_per_hour=self.notify_per_content_per_hour,
            per_hour=self.notify_per_hour,
            viral_ratio=self.notify_viral_ratio,
            settle_s=self.integrity_settle_s,
        )

    @field_validator("allowed_origins", "jwt_previous_secrets", "workers", mode="before")
    @classmethod
    def _comma_separated(cls, raw: Any) -> Any:
        # An environment variable is one string: "https://a.example,https://b.example".
        if isinstance(raw, str):
            return [o.strip() for o in raw.split(",") if o.strip()]
        return raw

    @field_validator(
        "rate_limit_like_user",
        "rate_limit_like_device",
        "rate_limit_like_address",
        "rate_limit_unlike_user",
        "rate_limit_unlike_device",
        "rate_limit_unlike_address",
        "rate_limit_view_user",
        "rate_limit_view_device",
        "rate_limit_view_address",
    )
    @classmethod
    def _rate(cls, raw: str) -> str:
        parse_rate(raw)  # a bad value fails start-up, with what was expected
        return raw

    def rate_table(self) -> dict[tuple[Action, Scope], Rate]:
        return {
            (action, scope): parse_rate(getattr(self, f"rate_limit_{action}_{scope}"))
            for action in Action
            for scope in Scope
        }

    @field_validator("client_region_header", mode="before")
    @classmethod
    def _header_name(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            return raw.strip() or None
        return raw

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, raw: str) -> str:
        parse_trusted_proxies(raw)  # a bad entry fails start-up, named
        return raw

    @model_validator(mode="after")
    def _region_needs_proxies(self) -> Settings:
        if self.client_region_header and not self.trusted_proxy_networks():
            raise ValueError(
                "CLIENT_REGION_HEADER is set but TRUSTED_PROXIES is empty: no request's "
                "region header would be believed; list the proxies that set it"
            )
        return self

    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_trusted_proxies(self.trusted_proxies)

    @model_validator(mode="after")
    def _rotation_needs_a_secret(self) -> Settings:
        if self.jwt_previous_secrets and not self.jwt_secret:
            raise ValueError(
                "JWT_PREVIOUS_SECRETS is set but JWT_SECRET is not: a rotation needs the "
                "new secret in JWT_SECRET"
            )
        return self

    @model_validator(mode="after")
    def _one_redis(self) -> Settings:
        if self.redis_url and self.redis_cluster_url:
            raise ValueError("set REDIS_URL or REDIS_CLUSTER_URL, not both")
        return self

    @field_validator("workers")
    @classmethod
    def _known_workers(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(WORKER_NAMES))
        if unknown:
            raise ValueError(f"WORKERS names unknown workers {unknown}; known: {WORKER_NAMES}")
        return names

    @model_validator(mode="after")
    def _sentinel(self) -> Settings:
        if not (self.redis_sentinels or self.redis_sentinel_master):
            return self
        if self.redis_url or self.redis_cluster_url:
            raise ValueError(
                "REDIS_SENTINELS replaces REDIS_URL and REDIS_CLUSTER_URL: set one of them"
            )
        if not (self.redis_sentinels and self.redis_sentinel_master):
            raise ValueError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together")
        from storage.redis_sentinel import parse_sentinels

        if not parse_sentinels(self.redis_sentinels):  # a bad entry raises, named
            raise ValueError("REDIS_SENTINELS lists no sentinel")
        return self

    @property
    def shared_redis(self) -> str | None:
        """The URL of a Redis other processes can see (single or cluster), if any;
        with Sentinel a description, not a URL to connect to."""
        if self.redis_sentinels and self.redis_sentinel_master:
            return f"redis+sentinel://{self.redis_sentinels}/{self.redis_sentinel_master}"
        return self.redis_url or self.redis_cluster_url

    @property
    def secret(self) -> str:
        return self.jwt_secret or DEV_JWT_SECRET

    def tracing(self) -> tracing.TracingConfig:
        return tracing.TracingConfig(
            self.otel_exporter_otlp_endpoint, self.otel_traces_exporter, self.otel_service_name
        )

    def document_policy(self) -> DocumentPolicy:
        return DocumentPolicy(
            limits=Limits(
                max_depth=self.max_query_depth,
                max_aliases=self.max_query_aliases,
                max_cost=self.max_query_cost,
                max_list_items=self.max_list_items,
                max_fragment_nesting=self.max_fragment_nesting,
                max_selections=self.max_selections,
            ),
            max_tokens=self.max_query_tokens,
            cache_bytes=self.document_cache_bytes,
            cache_max_query_bytes=self.document_cache_max_query_bytes,
        )


def configure_logging(settings: Settings, stream: Any = None) -> None:
    # JSON needs the traceback rendered to text first (a raw exc_info would be
    # written as "<traceback object at 0x...>"); the console renderer renders it.
    rendering: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if settings.log_json
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
            foreign_pre_chain=[
                # The request's id (transport/request_id.py) on stdlib lines too.
                structlog.contextvars.merge_contextvars,
                *tracing.log_processors(),
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso"),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # uvicorn's access lines are replaced by transport/request_id.py's (ACCESS_LOG), which
    # carry the request id and no client address; uvicorn then skips building its own.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            # trace_id and span_id inside a span, when tracing is on.
            *tracing.log_processors(),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


# --- resources ------------------------------------------------------------------


@dataclass(slots=True)
class Runtime:
    settings: Settings
    services: Services
    db: Any
    redis: Any
    workers: dict[str, Any] = field(default_factory=dict)

    @property
    def deps(self) -> Deps:
        return self.services.deps


def _open_redis(settings: Settings) -> Any:
    if settings.redis_sentinels and settings.redis_sentinel_master:
        from storage.redis_sentinel import open_sentinel_redis

        return open_sentinel_redis(
            settings.redis_sentinels,
            settings.redis_sentinel_master,
            password=settings.redis_sentinel_password,
            max_connections=settings.redis_max_connections,
        )
    if settings.redis_cluster_url:
        from storage.redis_cluster import open_redis_cluster

        return open_redis_cluster(settings.redis_cluster_url, settings.redis_max_connections)
    if settings.redis_url:
        from storage.redis_client import open_redis

        return open_redis(
            settings.redis_url,
            settings.redis_max_connections,
            settings.redis_pool_wait_s,
            socket_timeout_s=settings.redis_socket_timeout_s,
            connect_timeout_s=settings.redis_connect_timeout_s,
        )
    import fakeredis

    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)


def _broadcast_factory(settings: Settings) -> Any:
    # On a cluster, classic PUBLISH reaches subscribers on every node, so the pub/sub
    # connection is a plain one to the seed node (README, Redis Cluster).
    health_s = settings.live_pubsub_health_s
    if settings.redis_pubsub_url:
        pubsub_url = settings.redis_pubsub_url
        return lambda: Broadcast(backend=FixedRedisBackend(pubsub_url, health_check_s=health_s))
    if settings.redis_sentinels and settings.redis_sentinel_master:
        from storage.redis_sentinel import SentinelTopology, parse_sentinels

        topology = SentinelTopology(
            parse_sentinels(settings.redis_sentinels),
            settings.redis_sentinel_master,
            password=settings.redis_sentinel_password,
        )

        def sentinel_backend() -> Broadcast:
            # Built anew on each reconnect, so it connects to the primary of the moment.
            publish, subscribe = topology.pubsub_clients(health_s)
            return Broadcast(
                backend=FixedRedisBackend(
                    health_check_s=health_s, publish_client=publish, subscribe_client=subscribe
                )
            )

        return sentinel_backend
    url = settings.shared_redis
    if url:
        return lambda: Broadcast(backend=FixedRedisBackend(url, health_check_s=health_s))
    return lambda: Broadcast("memory://")


def build_workers(runtime: Runtime, consumer_name: str) -> dict[str, Any]:
    s, keys, deps, r = runtime.settings, runtime.services.keys, runtime.deps, runtime.redis
    archive = MongoEventArchive(runtime.db)
    publisher: Any = RedisPublisher(r) if s.shared_redis else HubPublisher(runtime.services.hub)
    sketches = RedisAnalytics(r, keys, s.event_dedupe_horizon_s * 1000)
    rules = load_integrity_rules(s)
    integrity = deps.integrity
    assert integrity is not None, "open_runtime wires count integrity"
    workers: dict[str, Any] = {
        "aggregator": Aggregator(
            RedisEventConsumer(r, keys, Keys.AGGREGATOR_GROUP, consumer_name),
            deps.counters,
            publisher,
            keys.channel,
            keys.user_channel,
        ),
        "archiver": Archiver(
            RedisEventConsumer(r, keys, Keys.ARCHIVE_GROUP, consumer_name), archive
        ),
        "outbox_relay": OutboxRelay(
            runtime.services.outboxes,
            archive,
            deps.log,
            deps.clock,
            grace=timedelta(seconds=s.outbox_grace_s),
        ),
        "reconciler": Reconciler(
            deps, RedisReconcileQueue(r, keys), interval_s=s.reconcile_interval_s
        ),
        "analytics": AnalyticsWorker(
            RedisEventConsumer(r, keys, Keys.ANALYTICS_GROUP, consumer_name),
            deps.contents,
            MongoAnalytics(runtime.db),
            sketches,
            sketches,
        ),
        "trending": TrendingWorker(
            RedisEventConsumer(r, keys, Keys.TRENDING_GROUP, consumer_name),
            deps.contents,
            RedisTrending(r, keys, s.event_dedupe_horizon_s * 1000),
            publisher,
            deps.clock,
        ),
        "integrity": IntegrityWorker(
            RedisEventConsumer(r, keys, Keys.INTEGRITY_GROUP, consumer_name),
            RedisIntegrity(r, keys, rules.windows, s.event_dedupe_horizon_s * 1000),
            rules,
            Enforcement(deps, integrity),
            deps.clock,
        ),
        "notifier": NotifierWorker(
            RedisEventConsumer(r, keys, Keys.NOTIFIER_GROUP, consumer_name),
            deps.contents,
            deps.reactions,
            deps.counters,
            RedisTrending(r, keys, s.event_dedupe_horizon_s * 1000),
            MongoNotifications(runtime.db),
            RedisNotifyState(r, keys, s.event_dedupe_horizon_s * 1000),
            publisher,
            deps.clock,
            s.notify_config(),
            expire_in_process=s.mongodb_url is None,
        ),
        "webhooks": WebhookSender(
            MongoWebhooks(runtime.db),
            None,
            deps.clock,
            deployment=(
                DeploymentEndpoint(s.notify_webhook_url, s.notify_webhook_secret)
                if s.notify_webhook_url and s.notify_webhook_secret
                else None
            ),
            timeout_s=s.webhook_timeout_s,
        ),
        "session_closer": SessionCloser(
            deps, MongoViewSessions(runtime.db), idle=timedelta(seconds=s.session_idle_s)
        ),
        "event_log_lag": EventLogLagProbe(RedisEventLag(r, keys, CONSUMER_GROUPS)),
    }
    if deps.snapshots is not None:
        workers["snapshotter"] = Snapshotter(
            deps.snapshots, deps.clock, interval_s=s.counter_snapshot_interval_s
        )
    if s.mongodb_url is None:
        # The in-process store enforces no TTL and every document is on this heap.
        workers["retention"] = Retention(
            MongoRetention(runtime.db),
            deps.clock,
            keep=timedelta(seconds=s.embedded_retention_s),
        )
    return workers


def _counter_snapshots(settings: Settings, db: Any, redis: Any, keys: Keys) -> SnapshotPorts | None:
    """Counter snapshots (domain/counter_snapshots.py) where Redis can be lost apart
    from MongoDB; the embedded Redis goes with the process and its store."""
    if settings.shared_redis is None:
        return None
    # Events after a snapshot must still be in MongoDB to restore from it.
    if settings.mongodb_url is None:
        horizon_s: float | None = settings.embedded_retention_s - 60
    elif settings.archive_ttl_s is not None:
        horizon_s = settings.archive_ttl_s - 300
    else:
        horizon_s = None
    return SnapshotPorts(
        RedisCounterSnapshots(redis, keys),
        MongoCounterSnapshots(db),
        MongoDurableEvents(db),
        None if horizon_s is None else int(horizon_s * 1000),
    )


def load_integrity_rules(settings: Settings) -> IntegrityRules:
    """The integrity rules file: the shipped one, or INTEGRITY_RULES_PATH."""
    path = (
        Path(settings.integrity_rules_path)
        if settings.integrity_rules_path
        else Path(domain.integrity_rules.__file__).with_name(
            domain.integrity_rules.DEFAULT_RULES_FILE
        )
    )
    return domain.integrity_rules.parse_integrity_rules(path.read_text())


def load_policies(settings: Settings) -> PolicyBook:
    """The view policy file: the shipped one, or VIEW_POLICIES_PATH."""
    path = (
        Path(settings.view_policies_path)
        if settings.view_policies_path
        else Path(domain.view_policy.__file__).with_name(domain.view_policy.DEFAULT_POLICY_FILE)
    )
    return domain.view_policy.parse_policy_book(path.read_text())


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, *, db: Any = None, redis: Any = None
) -> AsyncIterator[Runtime]:
    """Open every client once; close them all on the way out.

    ``db``/``redis`` may be handed in (tests bring their own Redis server).
    """
    # Driver errors that mean a store is down become UNAVAILABLE (domain/outages.py).
    register_drivers()
    mongo_client = None
    if db is None:
        mongo_client = (
            open_client(settings.mongodb_url, settings.mongodb_timeout_s)
            if settings.mongodb_url
            else open_embedded_client()
        )
        db = mongo_client[settings.mongodb_db]
    own_redis = redis is None
    if redis is None:
        redis = _open_redis(settings)
    keys = Keys(settings.key_prefix, settings.stream_partitions)
    # TTL indexes only on a real server: the in-process store would check a TTL index
    # by scanning its whole collection on every lookup, and has the retention worker.
    await ensure_indexes(db, ttl_s=settings.archive_ttl_s if settings.mongodb_url else None)
    await ensure_analytics_indexes(db, ttl=settings.mongodb_url is not None)
    analytics_sketches = RedisAnalytics(redis, keys, settings.event_dedupe_horizon_s * 1000)
    await analytics_sketches.load_scripts()
    reactions = MongoReactions(db)
    view_sessions = MongoViewSessions(db)
    counters = RedisCounters(redis, keys, settings.event_dedupe_horizon_s * 1000)
    marks = RedisViewMarks(redis, keys)
    await counters.load_scripts()
    await marks.load_scripts()
    limits_store = RedisRateLimits(redis, keys)
    await limits_store.load_scripts()
    clock = SystemClock()
    addresses = AddressHasher(RedisAddressSalts(redis, keys), clock)
    await addresses.warm()
    trending = RedisTrending(redis, keys, settings.event_dedupe_horizon_s * 1000)
    await trending.load_scripts()
    await ensure_integrity_indexes(db)
    await ensure_notification_indexes(db, ttl=settings.mongodb_url is not None)
    # Delivery records expire after 30 days on a real server (TTL index).
    await ensure_webhook_indexes(db, delivery_ttl_s=30 * 86_400 if settings.mongodb_url else None)
    rules = load_integrity_rules(settings)
    tiers = RedisTierMirror(redis, keys)
    integrity = IntegrityPorts(
        MongoActors(db),
        tiers,
        MongoRetiering(reactions, view_sessions),
        Bars(rules.exclude_below, rules.confident_at),
    )
    deps = Deps(
        clock=clock,
        contents=MongoContents(db),
        reactions=reactions,
        counters=counters,
        log=RedisEventLog(redis, keys),
        idempotency=RedisIdempotency(redis, keys, settings.idempotency_ttl_s),
        sources=[reactions, view_sessions],
        views=ViewPorts(view_sessions, marks, load_policies(settings)),
        analytics=AnalyticsPorts(
            MongoAnalytics(db, cache_entries=settings.analytics_bucket_cache), analytics_sketches
        ),
        trending=trending,
        trending_pages=(
            PageCache(settings.trending_page_cache_ms / 1000, time.monotonic)
            if settings.trending_page_cache_ms
            else None
        ),
        ranking_signals=(
            StampedCache(settings.ranking_signals_cache_ms, settings.ranking_signals_cache_entries)
            if settings.ranking_signals_cache_ms
            else None
        ),
        tiers=tiers,
        integrity=integrity,
        notifications=MongoNotifications(db),
        snapshots=_counter_snapshots(settings, db, redis, keys),
        admission=(
            IngestGate(settings.ingest_max_lag_ms, settings.ingest_max_wait_ms / 1000)
            if settings.ingest_max_lag_ms
            else None
        ),
    )
    try:
        async with LiveHub(
            _broadcast_factory(settings),
            max_updates_per_second=settings.live_max_updates_per_second,
        ) as hub:
            services = Services(
                deps=deps,
                keys=keys,
                hub=hub,
                tokens=TokenVerifier(
                    settings.secret,
                    require_exp=settings.jwt_require_exp,
                    max_lifetime_s=settings.jwt_max_lifetime_s,
                    previous_secrets=settings.jwt_previous_secrets,
                ),
                outboxes=[MongoOutbox(db["reactions"]), MongoOutbox(db["view_sessions"])],
                persisted_queries=RedisPersistedQueries(redis, keys, settings.apq_ttl_s),
                rate_limiter=RateLimiter(
                    FallbackRateLimits(limits_store, LocalRateLimits()),
                    settings.rate_table(),
                    enabled=settings.rate_limits,
                ),
                addresses=addresses,
                webhooks=WebhookPorts(
                    MongoWebhooks(db),
                    clock,
                    allow_insecure_local=settings.webhook_allow_insecure_local,
                ),
            )
            async with probing():
                yield Runtime(settings, services, db, redis)
    finally:
        if own_redis:
            await redis.aclose()
        if mongo_client is not None:
            mongo_client.close()


async def run_workers(
    runtime: Runtime, stop: asyncio.Event, *, gate: IngestGate | None = None
) -> None:
    """The selected workers until ``stop``; with a ``gate`` (the API's, when they run
    in its process), also the sampler that closes it while their groups lag."""
    name = f"{socket.gethostname()}-{os.getpid()}"
    runtime.workers = select_workers(build_workers(runtime, name), runtime.settings.workers)
    if runtime.deps.integrity is not None:
        # After a Redis loss the write paths would count excluded actors again.
        restored = await restore_mirror(runtime.deps.integrity)
        log.info("integrity tiers mirrored", actors=restored)
    log.info("workers started", workers=list(runtime.workers))
    tasks = {n: w.run for n, w in runtime.workers.items()}
    groups = [g for g in CONSUMER_GROUPS if g in runtime.workers]
    if gate is not None and groups:
        sampler = IngestGateSampler(
            RedisEventLag(runtime.redis, runtime.services.keys, groups), gate
        )
        tasks["ingest_gate"] = sampler.run
    await asyncio.gather(*(supervised(n, run, stop) for n, run in tasks.items()))


# build_workers' names (some only in some modes), for WORKERS.
WORKER_NAMES = (
    "aggregator",
    "archiver",
    "outbox_relay",
    "reconciler",
    "analytics",
    "trending",
    "integrity",
    "notifier",
    "webhooks",
    "session_closer",
    "event_log_lag",
    "snapshotter",
    "retention",
)


def select_workers(workers: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """WORKERS: only the named workers (all when empty); an unknown name fails."""
    if not names:
        return workers
    unknown = sorted(set(names) - set(workers))
    if unknown:
        raise ValueError(f"WORKERS names unknown workers {unknown}; known: {sorted(workers)}")
    return {name: w for name, w in workers.items() if name in names}


@contextlib.asynccontextmanager
async def embedded_workers(runtime: Runtime) -> AsyncIterator[None]:
    """Workers inside the API process when MongoDB is in process: no other process
    could see that data. With a real MongoDB they run as `main.py worker`."""
    if runtime.settings.mongodb_url is not None:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(run_workers(runtime, stop, gate=runtime.deps.admission))
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- the app --------------------------------------------------------------------


def _middleware(settings: Settings) -> list[Middleware]:
    stack = [
        # Before the rest: everything inside sees the client X-Forwarded-For gives (from
        # FORWARDED_ALLOW_IPS only), and the direct peer stays known.
        Middleware(ProxyHeaders, trusted_hosts=settings.forwarded_allow_ips),
        Middleware(BodyLimit, max_bytes=settings.max_request_bytes),
    ]
    if settings.allowed_origins:
        # Outermost, so refusals (413) carry the CORS headers too and a page sees
        # them. Without allowed origins no page may call, and no request pays for
        # the middleware: another origin's preflight is refused (405).
        cors = Middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id"],
            max_age=CORS_MAX_AGE_S,
        )
        stack.insert(0, cors)
    # Outside everything, CORS included: every answer (413s and preflights too) carries
    # X-Request-Id, and every log line of a request its request_id. The access line
    # replaces uvicorn's (configure_logging silences that one).
    stack.insert(0, Middleware(RequestId, access_log=settings.access_log))
    if tracing.active():
        from tracing.setup import asgi_middleware

        # Outermost: the access line and every other line of a request are in its span.
        otel, options = asgi_middleware()
        stack.insert(0, Middleware(otel, **options))
    return stack


def create_app(settings: Settings | None = None, *, db: Any = None, redis: Any = None) -> Starlette:
    settings = settings or Settings()
    tracing.start(settings.tracing())
    holder: dict[str, Runtime] = {}

    async def metrics(_: Request) -> Response:
        runtime = holder.get("runtime")
        if runtime is not None:
            await _readiness(runtime)  # likeview_ready, as /readyz would answer now
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        runtime = holder.get("runtime")
        if runtime is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        checks = await _readiness(runtime)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503
        )

    class _Endpoint:
        """The routes' ASGI target: the GraphQL app exists only once the lifespan
        has opened the clients it needs."""

        app: GraphQLApp

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await self.app(scope, receive, send)

    graphql_endpoint = _Endpoint()
    # Parsed once here (Settings validated it already): get_context only checks membership.
    trusted_proxies = settings.trusted_proxy_networks()
    graphiql = GraphiQLPage() if settings.graphiql else None
    ide_routes = (
        [Route(f"{GRAPHIQL_ROUTE}/{{path:path}}", graphiql.serve_asset)] if graphiql else []
    )
    # Only with the public development secret, which signs for anyone anyway.
    dev_routes = (
        []
        if settings.jwt_secret
        else [
            Route(
                transport.dev_token.ROUTE,
                transport.dev_token.endpoint(settings.secret),
                methods=["POST"],
            )
        ]
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_logging(settings)
        async with open_runtime(settings, db=db, redis=redis) as runtime:
            holder["runtime"] = runtime
            LIVE_SUBSCRIBERS.set_function(lambda: runtime.services.hub.subscriber_count)
            app.state.runtime = runtime
            graphql_endpoint.app = GraphQLApp(
                runtime.services,
                settings.document_policy(),
                fast_paths=settings.fast_paths,
                introspection=settings.introspection,
                graphiql=graphiql,
                allowed_origins=settings.allowed_origins,
                region_header=settings.client_region_header,
                trusted_proxies=trusted_proxies,
            )
            if tracing.active():
                from tracing.graphql import trace_operations

                trace_operations(graphql_endpoint.app.schema)
            _announce(settings, graphiql)
            _tune_gc()
            async with embedded_workers(runtime):
                yield

    return Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_endpoint),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            *ide_routes,
            *dev_routes,
            Mount("/app", StaticFiles(directory=APP_ASSETS, html=True, check_dir=False)),
        ],
        lifespan=lifespan,
        middleware=_middleware(settings),
    )


async def _readiness(runtime: Runtime) -> dict[str, str]:
    """GET /readyz's checks: MongoDB and Redis answer within 2 s (also the
    likeview_ready gauges)."""
    checks: dict[str, str] = {}
    probes = (
        ("mongodb", ping(runtime.db), READY_MONGODB),
        ("redis", runtime.redis.ping(), READY_REDIS),
    )
    for name, probe, gauge in probes:
        try:
            await asyncio.wait_for(probe, 2.0)
            checks[name] = "ok"
            gauge.set(1)
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
            gauge.set(0)
    return checks


# Collect the young generation every 50,000 net allocations instead of 700, and
# the older ones 20 times less often: a request allocates thousands of short-lived
# objects, and with a large live heap (in embedded mode mongomock keeps every
# document in this process) each full collection walks all of it. Cycles are
# still collected, later; the bound on uncollected young objects stays small.
GC_THRESHOLDS = (50_000, 20, 20)


def _tune_gc() -> None:
    """Once per process, at start-up: keep what start-up built (modules, schema,
    clients) out of every later full collection, since it lives as long as the
    process (a full collection of it alone took about 30 ms), and collect less
    often (GC_THRESHOLDS)."""
    global _heap_frozen
    if not _heap_frozen:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        _heap_frozen = True


_heap_frozen = False


def _announce(settings: Settings, graphiql: GraphiQLPage | None) -> None:
    in_memory = []
    if settings.mongodb_url is None:
        in_memory.append("MongoDB (mongomock)")
    if settings.shared_redis is None:
        in_memory.append("Redis (fakeredis) and pub/sub (memory://)")
    if in_memory:
        log.warning(
            "in-memory backends: NOTHING IS PERSISTED; data is lost when this process stops",
            in_memory=in_memory,
        )
    if settings.mongodb_url is None:
        log.info("workers run inside this process (MongoDB is in-process)")
        # Measured in docs/PERFORMANCE.md (soak): without a bound the heap grew by
        # ~2.9 KB per view event, and full garbage collections over it took seconds.
        log.warning(
            "embedded mode keeps every document in this process's memory: only the last "
            "EMBEDDED_RETENTION_S of raw view events, archived events and ended view "
            "sessions are kept (counted views are folded into per-content tallies, so "
            "counts stay exact); memory and GC pauses still grow with contents, reactions "
            "and viewers; for real traffic set MONGODB_URL",
            embedded_retention_s=settings.embedded_retention_s,
        )
    if graphiql is not None and graphiql.missing():
        log.warning(
            "GraphiQL's assets are not installed: run `make graphiql` (or set GRAPHIQL=false)",
            missing=graphiql.missing(),
        )
    if settings.jwt_secret is None:
        log.warning("JWT_SECRET is unset: using the public development secret; never in production")


# --- CLI ------------------------------------------------------------------------


async def _worker_main(settings: Settings) -> None:
    tracing.start(settings.tracing())
    configure_logging(settings)
    if settings.mongodb_url is None or settings.shared_redis is None:
        log.warning("worker without MONGODB_URL/REDIS_URL sees only its own in-memory data")
    async with open_runtime(settings) as runtime:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with serving_metrics(settings):
            await run_workers(runtime, stop)


@contextlib.contextmanager
def serving_metrics(settings: Settings) -> Iterator[None]:
    """METRICS_PORT: this process's metrics over HTTP (prometheus_client's server,
    in a thread), for a process without the API's GET /metrics."""
    if settings.metrics_port is None:
        yield
        return
    from prometheus_client import start_http_server

    server, thread = start_http_server(settings.metrics_port, addr=settings.metrics_host)
    log.info("metrics served", host=settings.metrics_host, port=settings.metrics_port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _since(raw: str) -> datetime:
    """--since: an ISO date or date-time; without an offset, UTC."""
    moment = datetime.fromisoformat(raw)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _analytics_rebuild(
    settings: Settings, content: str | None, since: datetime | None
) -> int:
    configure_logging(settings)
    async with open_runtime(settings) as runtime:
        return await rebuild_analytics(
            runtime.db,
            runtime.redis,
            runtime.services.keys,
            runtime.deps.contents,
            content_id=content,
            since=since,
            dedupe_horizon_s=settings.event_dedupe_horizon_s,
        )


async def _trending_rebuild(settings: Settings) -> int:
    configure_logging(settings)
    async with open_runtime(settings) as runtime:
        store = runtime.deps.trending
        assert isinstance(store, RedisTrending)
        return await rebuild_trending(runtime.db, store, runtime.deps.contents, runtime.deps.clock)


async def _export_main(settings: Settings, args: argparse.Namespace) -> int:
    configure_logging(settings)
    if settings.mongodb_url is None:
        # The embedded store lives in the API process's memory: nothing to read here.
        print("likeview: export needs MONGODB_URL", file=sys.stderr)
        return 2
    client = open_client(settings.mongodb_url, settings.mongodb_timeout_s)
    try:
        return await run_export(args, client[settings.mongodb_db])
    finally:
        client.close()


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# `serve --workers N`: each of uvicorn's worker processes builds its app from this.
SERVE_APP = "main:serve_app"


def serve_app() -> Starlette:
    """The app of one process of `serve --workers N`, from the environment, set up as
    the single process is (its lifespan tunes the collector: `_tune_gc`)."""
    hide_client_addresses()
    return create_app(Settings())


def workers_refused(settings: Settings, workers: int) -> str | None:
    """Why `serve --workers N` cannot run with these settings, or None."""
    if workers == 1:
        return None
    missing = [] if settings.mongodb_url else ["MONGODB_URL"]
    if not settings.shared_redis:
        missing.append("REDIS_URL")
    if not missing:
        return None
    return (
        f"serve --workers {workers} needs {' and '.join(missing)}: the embedded backends live "
        "in one process's memory, so each worker process would have its own data"
    )


def uvicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """uvicorn's settings of `serve`, the same for one process and for --workers N."""
    return {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": settings.access_log,
        "loop": "auto",
        "http": "auto",
        # Live pushes are ~100-byte JSON frames: per-connection zlib on each
        # cost more CPU than it saved bytes (docs/PERFORMANCE.md, scenario 5).
        "ws_per_message_deflate": False,
        # A larger frame is refused by the server (close 1009) before the
        # app reads it; HTTP bodies are bounded by BodyLimit.
        "ws_max_size": settings.max_request_bytes,
        # X-Forwarded-For is handled inside the app (transport/proxy_headers.py), so
        # the direct peer stays known for the region header.
        "proxy_headers": False,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="likeview")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="API processes sharing the port (more than 1 needs MONGODB_URL and REDIS_URL)",
    )
    sub.add_parser("worker", help="run the workers (production)")
    token = sub.add_parser("token", help="print a development token")
    token.add_argument("--sub", required=True)
    token.add_argument("--role", action="append", default=[])
    token.add_argument("--ttl", type=int, default=DEFAULT_TTL_S)
    sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    analytics = sub.add_parser("analytics", help="creator analytics maintenance")
    analytics_sub = analytics.add_subparsers(dest="analytics_command", required=True)
    rebuild = analytics_sub.add_parser(
        "rebuild", help="recompute rollups and sketches from the archived events"
    )
    rebuild.add_argument("--content", help="one content (and its creator's totals)")
    rebuild.add_argument("--since", type=_since, help="from this UTC day on (ISO date)")
    trend = sub.add_parser("trending", help="trending and ranking signals maintenance")
    trend_sub = trend.add_subparsers(dest="trending_command", required=True)
    trend_sub.add_parser(
        "rebuild", help="recompute trending and ranking signals from the archived events"
    )
    add_export_parser(sub)  # export events (docs/EXPORT.md)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings()
    refused = workers_refused(settings, args.workers) if args.command == "serve" else None
    if refused is not None:
        print(f"likeview: {refused}", file=sys.stderr)
        return 2
    if (
        args.command in ("serve", "worker", "analytics", "trending", "export")
        and settings.mongodb_url
    ):
        problem = unreachable(settings.mongodb_url, settings.mongodb_timeout_s)
        if problem is not None:
            print(f"likeview: {problem}", file=sys.stderr)
            return 2

    if args.command == "serve":
        import uvicorn

        options = uvicorn_options(settings, args.host, args.port)
        if args.workers == 1:
            # The client's address is a signal, never logged (docs/SECURITY.md, Abuse limits).
            hide_client_addresses()
            uvicorn.run(create_app(settings), **options)
        else:
            # uvicorn's supervisor starts (and restarts) the processes; each imports
            # SERVE_APP and runs it with the same options. Its own lines need a handler.
            configure_logging(settings)
            uvicorn.run(SERVE_APP, factory=True, workers=args.workers, **options)
    elif args.command == "worker":
        asyncio.run(_worker_main(settings))
    elif args.command == "token":
        if not 0 < args.ttl <= settings.jwt_max_lifetime_s:
            # The server would refuse it: better to say so now than at first use.
            parser.error(f"--ttl must be in 1..{settings.jwt_max_lifetime_s} (JWT_MAX_LIFETIME_S)")
        print(issue_token(settings.secret, args.sub, args.role, args.ttl))
    elif args.command == "schema":
        print(build_schema().as_str())
    elif args.command == "analytics":
        try:
            n = asyncio.run(_analytics_rebuild(settings, args.content, args.since))
        except ContentNotFound as exc:
            print(f"likeview: {exc.message}", file=sys.stderr)
            return 2
        print(f"analytics rebuilt from {n} archived events")
    elif args.command == "trending":
        n = asyncio.run(_trending_rebuild(settings))
        print(f"trending rebuilt from {n} archived events")
    elif args.command == "export":
        return asyncio.run(_export_main(settings, args))
    return 0


# Run as a script, this file is `__main__` (and `__mp_main__` in the processes that
# multiprocessing spawns for `serve --workers N`): importing SERVE_APP by name must
# find this module, not load it a second time (its metrics would be registered twice).
if __name__ in ("__main__", "__mp_main__"):
    sys.modules.setdefault("main", sys.modules[__name__])

if __name__ == "__main__":
    sys.exit(main())
