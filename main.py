"""Likeview's composition root: settings, resources, app factory, workers, CLI.

python main.py serve [--host H] [--port P]   the API (embedded backends unless URLs are set)
python main.py worker                         aggregator, archiver, outbox relay, reconciler
python main.py token --sub USER [--role R]    a development bearer token
python main.py schema                         print the GraphQL SDL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import structlog
from broadcaster import Broadcast
from cross_web import HTTPException as StrawberryHTTPException
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

import domain.views
from domain.deps import Deps
from domain.errors import Unauthenticated
from domain.ports import ViewPorts
from domain.views import PolicyBook
from resolvers import http_post
from resolvers.auth import TokenVerifier, issue_token
from resolvers.context import Context, Loaders, Services
from schema.root import build_schema
from storage.clock import SystemClock
from storage.keys import Keys
from storage.mongo import ensure_indexes, open_client, ping
from storage.mongo_contents import MongoContents
from storage.mongo_events import MongoEventArchive
from storage.mongo_outbox import MongoOutbox
from storage.mongo_reactions import MongoReactions
from storage.mongo_view_sessions import MongoViewSessions
from storage.redis_counters import RedisCounters
from storage.redis_idempotency import RedisIdempotency
from storage.redis_publisher import RedisPublisher
from storage.redis_stream import RedisEventConsumer, RedisEventLog
from storage.redis_view_marks import RedisViewMarks
from subscriptions.hub import LiveHub
from subscriptions.redis_backend import FixedRedisBackend
from workers.aggregator import Aggregator
from workers.archiver import Archiver
from workers.outbox_relay import OutboxRelay
from workers.reconciler import Reconciler

log = structlog.get_logger("likeview")

DEV_JWT_SECRET = "likeview-dev-secret-change-me-0123456789abcdef"
LIVE_SUBSCRIBERS = Gauge("likeview_live_subscribers", "Open live-counter subscriptions")


# --- settings -------------------------------------------------------------------


class Settings(BaseSettings):
    """Environment variables, documented in the README's configuration table."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    mongodb_url: str | None = None
    mongodb_db: str = "likeview"
    redis_url: str | None = None
    jwt_secret: str | None = None
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    key_prefix: str = "lv"
    stream_partitions: int = Field(4, ge=1, le=1024)
    live_max_updates_per_second: float = Field(4.0, gt=0)
    idempotency_ttl_s: int = Field(25 * 3600, ge=24 * 3600)
    event_dedupe_horizon_s: int = Field(3600, ge=60)
    outbox_grace_s: float = Field(10.0, gt=0)
    reconcile_interval_s: float = Field(300.0, gt=0)
    log_level: str = "INFO"
    log_json: bool = False
    # One log line per HTTP request costs about 35-40 µs of CPU through the
    # structlog formatter, some 3% of a like mutation's: a proxy or /metrics
    # often makes it redundant.
    access_log: bool = True
    view_policies_path: str | None = None

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, raw: Any) -> Any:
        # An environment variable is one string: "https://a.example,https://b.example".
        if isinstance(raw, str):
            return [o.strip() for o in raw.split(",") if o.strip()]
        return raw

    @property
    def secret(self) -> str:
        return self.jwt_secret or DEV_JWT_SECRET


def configure_logging(settings: Settings) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso"),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    structlog.configure(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


# --- resources ------------------------------------------------------------------


class HubPublisher:
    """Publisher for the embedded mode: straight into the in-process broadcast."""

    def __init__(self, hub: LiveHub) -> None:
        self._hub = hub

    async def publish(self, messages: Mapping[str, str]) -> None:
        for channel, message in messages.items():
            await self._hub.publish(channel, message)


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
    if settings.redis_url:
        from storage.redis_client import open_redis

        return open_redis(settings.redis_url)
    import fakeredis

    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)


def _broadcast_factory(settings: Settings) -> Any:
    url = settings.redis_url
    if url:
        return lambda: Broadcast(backend=FixedRedisBackend(url))
    return lambda: Broadcast("memory://")


def build_workers(runtime: Runtime, consumer_name: str) -> dict[str, Any]:
    s, keys, deps, r = runtime.settings, runtime.services.keys, runtime.deps, runtime.redis
    archive = MongoEventArchive(runtime.db)
    publisher: Any = RedisPublisher(r) if s.redis_url else HubPublisher(runtime.services.hub)
    return {
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
            runtime.services.extra["outboxes"],
            archive,
            deps.log,
            deps.clock,
            grace=timedelta(seconds=s.outbox_grace_s),
        ),
        "reconciler": Reconciler(deps, interval_s=s.reconcile_interval_s),
    }


def load_policies(settings: Settings) -> PolicyBook:
    """The view policy file: the shipped one, or VIEW_POLICIES_PATH."""
    path = (
        Path(settings.view_policies_path)
        if settings.view_policies_path
        else Path(domain.views.__file__).with_name(domain.views.DEFAULT_POLICY_FILE)
    )
    return domain.views.parse_policy_book(path.read_text())


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, *, db: Any = None, redis: Any = None
) -> AsyncIterator[Runtime]:
    """Open every client once; close them all on the way out.

    ``db``/``redis`` may be handed in (tests bring their own Redis server).
    """
    mongo_client = None
    if db is None:
        mongo_client = open_client(settings.mongodb_url)
        db = mongo_client[settings.mongodb_db]
    own_redis = redis is None
    if redis is None:
        redis = _open_redis(settings)
    keys = Keys(settings.key_prefix, settings.stream_partitions)
    await ensure_indexes(db)
    reactions = MongoReactions(db)
    view_sessions = MongoViewSessions(db)
    counters = RedisCounters(redis, keys, settings.event_dedupe_horizon_s * 1000)
    marks = RedisViewMarks(redis, keys)
    await counters.load_scripts()
    await marks.load_scripts()
    deps = Deps(
        clock=SystemClock(),
        contents=MongoContents(db),
        reactions=reactions,
        counters=counters,
        log=RedisEventLog(redis, keys),
        idempotency=RedisIdempotency(redis, keys, settings.idempotency_ttl_s),
        sources=[reactions, view_sessions],
        views=ViewPorts(view_sessions, marks, load_policies(settings)),
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
                tokens=TokenVerifier(settings.secret),
                extra={
                    "outboxes": [MongoOutbox(db["reactions"]), MongoOutbox(db["view_sessions"])]
                },
            )
            yield Runtime(settings, services, db, redis)
    finally:
        if own_redis:
            await redis.aclose()
        if mongo_client is not None:
            mongo_client.close()


async def run_workers(runtime: Runtime, stop: asyncio.Event) -> None:
    name = f"{socket.gethostname()}-{os.getpid()}"
    runtime.workers = build_workers(runtime, name)
    await asyncio.gather(*(w.run(stop) for w in runtime.workers.values()))


@contextlib.asynccontextmanager
async def embedded_workers(runtime: Runtime) -> AsyncIterator[None]:
    """Workers inside the API process when MongoDB is in process: no other process
    could see that data. With a real MongoDB they run as `main.py worker`."""
    if runtime.settings.mongodb_url is not None:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(run_workers(runtime, stop))
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- the app --------------------------------------------------------------------


class GraphQLApp(GraphQL):
    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(build_schema(), **kwargs)
        self.services = services
        self._lean = http_post.serves(self)

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        actor, auth_error = None, None
        if not isinstance(request, WebSocket):
            try:
                actor = self.services.tokens.actor_from_header(request.headers.get("authorization"))
            except Unauthenticated as exc:
                auth_error = exc
        loaders = Loaders(self.services.deps, actor)
        return Context(self.services, actor, loaders, request, response, auth_error)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return http_post.SubResponse()

    async def on_ws_connect(self, context: Context) -> Any:  # type: ignore[override]
        params = context.connection_params or {}
        header = params.get("authorization") or params.get("Authorization")
        if header is None and context.request is not None:
            header = context.request.headers.get("authorization")
        try:
            context.actor = self.services.tokens.actor_from_header(header)
        except Unauthenticated as exc:
            raise ConnectionRejectionError() from exc
        context.loaders = Loaders(self.services.deps, context.actor)
        return await super().on_ws_connect(context)  # type: ignore[arg-type]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        try:
            response: Response | None = None
            if self._lean and http_post.is_plain_json_post(scope):
                response = await http_post.answer(self, request, orjson.dumps)
            if response is None:
                response = await self.run(request)
        except StrawberryHTTPException as exc:
            # Strawberry answers these (malformed JSON, no query, wrong method) in
            # plain text; clients get the same error shape as everywhere else.
            response = JSONResponse(
                {"errors": [{"message": exc.reason, "extensions": {"code": "BAD_REQUEST"}}]},
                status_code=exc.status_code,
            )
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        # str, not bytes: bytes would make WebSocket frames binary.
        return orjson.dumps(data).decode()


def create_app(settings: Settings | None = None, *, db: Any = None, redis: Any = None) -> Starlette:
    settings = settings or Settings()
    holder: dict[str, Runtime] = {}

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        runtime = holder.get("runtime")
        checks: dict[str, str] = {}
        if runtime is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        for name, probe in (("mongodb", ping(runtime.db)), ("redis", runtime.redis.ping())):
            try:
                await asyncio.wait_for(probe, 2.0)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"error: {type(exc).__name__}"
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

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_logging(settings)
        async with open_runtime(settings, db=db, redis=redis) as runtime:
            holder["runtime"] = runtime
            LIVE_SUBSCRIBERS.set_function(lambda: runtime.services.hub.subscriber_count)
            app.state.runtime = runtime
            graphql_endpoint.app = GraphQLApp(
                runtime.services,
                allowed_origins=settings.allowed_origins,
                keep_alive=True,
                keep_alive_interval=15,
            )
            _announce(settings)
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
        ],
        lifespan=lifespan,
    )


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


def _announce(settings: Settings) -> None:
    in_memory = []
    if settings.mongodb_url is None:
        in_memory.append("MongoDB (mongomock)")
    if settings.redis_url is None:
        in_memory.append("Redis (fakeredis) and pub/sub (memory://)")
    if in_memory:
        log.warning(
            "in-memory backends: NOTHING IS PERSISTED; data is lost when this process stops",
            in_memory=in_memory,
        )
    if settings.mongodb_url is None:
        log.info("workers run inside this process (MongoDB is in-process)")
    if settings.jwt_secret is None:
        log.warning("JWT_SECRET is unset: using the public development secret; never in production")


# --- CLI ------------------------------------------------------------------------


async def _worker_main(settings: Settings) -> None:
    configure_logging(settings)
    if settings.mongodb_url is None or settings.redis_url is None:
        log.warning("worker without MONGODB_URL/REDIS_URL sees only its own in-memory data")
    async with open_runtime(settings) as runtime:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "workers started", workers=["aggregator", "archiver", "outbox_relay", "reconciler"]
        )
        await run_workers(runtime, stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="likeview")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    sub.add_parser("worker", help="run the workers (production)")
    token = sub.add_parser("token", help="print a development token")
    token.add_argument("--sub", required=True)
    token.add_argument("--role", action="append", default=[])
    token.add_argument("--ttl", type=int, default=7 * 24 * 3600)
    sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    args = parser.parse_args(argv)
    settings = Settings()

    if args.command == "serve":
        import uvicorn

        uvicorn.run(
            create_app(settings),
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=settings.access_log,
            loop="auto",
            http="auto",
            # Live pushes are ~100-byte JSON frames: per-connection zlib on each
            # cost more CPU than it saved bytes (docs/PERFORMANCE.md, scenario 5).
            ws_per_message_deflate=False,
        )
    elif args.command == "worker":
        asyncio.run(_worker_main(settings))
    elif args.command == "token":
        print(issue_token(settings.secret, args.sub, args.role, args.ttl))
    elif args.command == "schema":
        print(build_schema().as_str())
    return 0


if __name__ == "__main__":
    sys.exit(main())
