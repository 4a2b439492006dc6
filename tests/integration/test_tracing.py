"""Traces end to end (tracing/, docs/OPERATIONS.md "Traces"): a GraphQL like over
the app's ASGI stack, its event in the log, and the aggregator's apply."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tracing
from domain.catalog import register_content
from domain.contents import ContentKind
from domain.events import EngagementEvent
from domain.identity import Actor
from domain.likes import set_reaction
from domain.reactions import ReactionType
from main import Settings, configure_logging, create_app
from resolvers.auth import issue_token
from storage.keys import Keys
from tests.integration.conftest import SERVICE
from tracing.setup import install, uninstall

SECRET = "t" * 32
LIKE = "mutation Like($id: ID!) { like(input: {contentId: $id}) { changed } }"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    install(
        tracing.TracingConfig(service_name="likeview-test"), exporter, batch=False, set_global=False
    )
    try:
        yield exporter
    finally:
        uninstall()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


async def stream_events(redis: Any) -> list[tuple[dict[str, Any], EngagementEvent]]:
    out = []
    for stream in Keys("lv", 4).streams():
        for _id, fields in await redis.xrange(stream):
            for raw in orjson.loads(fields.get("b", "[]")):
                out.append((raw, EngagementEvent.from_dict(raw)))
    return out


async def wait_for_span(exporter: InMemorySpanExporter, name: str) -> Any:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        found = [s for s in exporter.get_finished_spans() if s.name == name]
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, [
            s.name for s in exporter.get_finished_spans()
        ]
        await asyncio.sleep(0.02)


@pytest.fixture
async def served(spans, redis_url, app_redis, mongo_db, log_lines) -> AsyncIterator[Any]:
    # The relay leaves the outbox alone (its grace is long): the test reads it.
    settings = Settings(redis_url=redis_url, jwt_secret=SECRET, log_json=True, outbox_grace_s=3600)
    app = create_app(settings, db=mongo_db, redis=app_redis)
    async with app.router.lifespan_context(app):
        # The lifespan configured logging to stderr: to the test's buffer instead.
        configure_logging(settings, stream=log_lines)
        await register_content(
            app.state.runtime.deps, SERVICE, "c1", "creator", ContentKind.VIDEO, 1
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            client.runtime = app.state.runtime  # type: ignore[attr-defined]
            yield client


async def test_a_like_is_one_trace_from_http_to_the_aggregator(served, spans, app_redis, log_lines):
    token = issue_token(SECRET, "viewer")
    spans.clear()
    r = await served.post(
        "/graphql",
        json={"query": LIKE, "variables": {"id": "c1"}, "operationName": "Like"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert r.json() == {"data": {"like": {"changed": True}}}
    apply = await wait_for_span(spans, "aggregator apply")

    finished = spans.get_finished_spans()
    [http] = [s for s in finished if s.kind == SpanKind.SERVER]
    trace_id = http.context.trace_id
    assert http.attributes is not None
    [operation] = [s for s in finished if s.name == "mutation Like"]
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.type"] == "mutation"
    assert operation.attributes["graphql.operation.name"] == "Like"
    assert operation.context.trace_id == trace_id
    assert operation.parent is not None and operation.parent.span_id == http.context.span_id
    redis_spans = [s for s in finished if s.attributes and s.attributes.get("db.system") == "redis"]
    assert any(s.context.trace_id == trace_id for s in redis_spans)

    # The event carries the request's trace context, in the outbox and the stream.
    [(raw, event)] = await stream_events(app_redis)
    record = await served.runtime.deps.reactions.get("c1", "viewer")
    assert record is not None
    assert [e.traceparent for e in record.pending] == [event.traceparent]
    assert event.traceparent is not None and raw["traceparent"] == event.traceparent
    assert event.traceparent.split("-")[1] == f"{trace_id:032x}"

    # One traced event in the batch: the apply continues its trace, and the live
    # push is the apply's child.
    assert apply.context.trace_id == trace_id
    assert apply.attributes["likeview.traced_events"] == 1
    publish = [s for s in spans.get_finished_spans() if s.name == "live publish"]
    assert publish and all(p.parent.span_id == apply.context.span_id for p in publish)

    # The request's log lines carry its trace and span ids.
    [access] = [
        json.loads(line)
        for line in log_lines.getvalue().splitlines()
        if '"likeview.access"' in line
    ]
    assert access["trace_id"] == f"{trace_id:032x}"
    assert access["span_id"] == f"{http.context.span_id:016x}"
    assert len(access["request_id"]) == 32


async def test_probes_make_no_spans(served, spans):
    spans.clear()
    assert (await served.get("/healthz")).status_code == 200
    assert spans.get_finished_spans() == ()


async def test_with_tracing_off_events_carry_no_traceparent(runtime, app_redis):
    assert tracing.tracer is None
    deps = runtime.deps
    await register_content(deps, SERVICE, "c1", "creator", ContentKind.VIDEO, 1)
    await set_reaction(deps, Actor("viewer"), "c1", ReactionType.LIKE)
    [(raw, event)] = await stream_events(app_redis)
    assert "traceparent" not in raw and event.traceparent is None
    doc = await deps.reactions.get("c1", "viewer")
    assert doc is not None and all(e.traceparent is None for e in doc.pending)
