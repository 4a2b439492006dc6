"""Tracing (tracing/): the settings, the event's trace context, the spans' shapes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tracing
from domain.events import REACTION, EngagementEvent, current_traceparent
from main import Settings
from schema.root import build_schema
from tracing.context import span_context_of
from tracing.graphql import trace_operations
from tracing.logs import add_trace_ids
from tracing.setup import _exporter, install, uninstall
from tracing.spans import MAX_LINKS, applying

ROOT = Path(__file__).resolve().parents[2]
TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    install(tracing.TracingConfig(), exporter, batch=False, set_global=False)
    try:
        yield exporter
    finally:
        uninstall()


@pytest.mark.parametrize(
    ("endpoint", "exporter", "enabled"),
    [
        (None, None, False),
        ("", "", False),
        ("http://collector:4318", None, True),
        (None, "otlp", True),
        (None, "console", True),
        ("http://collector:4318", "none", False),
        ("http://collector:4318", " NONE ", False),
    ],
)
def test_tracing_is_on_only_when_configured(endpoint, exporter, enabled) -> None:
    assert tracing.TracingConfig(endpoint, exporter).enabled is enabled


def test_the_settings_read_the_standard_variables(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "likeview-eu")
    config = Settings().tracing()
    assert config == tracing.TracingConfig("http://collector:4318", None, "likeview-eu")
    assert Settings(_env_file=None, otel_exporter_otlp_endpoint=None).tracing().enabled is False


@pytest.mark.parametrize(
    ("exporter", "endpoint", "expected"),
    [
        ("otlp", "http://c:4318/", "http://c:4318/v1/traces"),
        (None, "http://c:4318", "http://c:4318/v1/traces"),
    ],
)
def test_the_otlp_exporter_posts_to_the_traces_path(exporter, endpoint, expected) -> None:
    chosen = _exporter(tracing.TracingConfig(endpoint, exporter))
    assert chosen._endpoint == expected  # type: ignore[attr-defined]


def test_an_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        _exporter(tracing.TracingConfig(None, "zipkin"))


def event(traceparent: str | None = None, n: int = 0) -> EngagementEvent:
    return EngagementEvent(f"r-{n}", REACTION, "c1", "u", 1, {"likes": 1}, traceparent=traceparent)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, None),  # an event written before traces existed
        ({"traceparent": None}, None),
        ({"traceparent": TP}, TP),
        ({"traceparent": 5}, None),
        ({"traceparent": "x" * 1000}, None),
    ],
)
def test_an_event_keeps_its_traceparent_through_a_round_trip(raw, expected) -> None:
    base = event().to_dict()
    assert "traceparent" not in base  # untraced: nothing written
    parsed = EngagementEvent.from_dict({**base, **raw})
    assert parsed.traceparent == expected
    assert EngagementEvent.from_dict(parsed.to_dict()) == parsed


@pytest.mark.parametrize(
    ("traceparent", "valid"),
    [
        (TP, True),
        (None, False),
        ("", False),
        ("garbage", False),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", False),
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", False),
        ("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", False),
    ],
)
def test_only_a_valid_traceparent_names_a_span(traceparent, valid) -> None:
    ctx = span_context_of(traceparent)
    assert (ctx is not None) is valid
    if ctx is not None:
        assert (ctx.trace_id, ctx.span_id, ctx.is_remote) == (
            0x0AF7651916CD43DD8448EB211C80319C,
            0xB7AD6B7169203331,
            True,
        )


def test_without_tracing_no_traceparent_is_computed() -> None:
    assert tracing.tracer is None and current_traceparent() is None
    assert tracing.log_processors() == []


def test_inside_a_span_the_traceparent_and_the_log_ids_are_the_span_s(spans) -> None:
    assert current_traceparent() is None
    assert add_trace_ids(None, "info", {}) == {}
    with tracing.tracer.start_as_current_span("request") as span:
        ctx = span.get_span_context()
        flags = int(ctx.trace_flags)
        assert current_traceparent() == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{flags:02x}"
        assert add_trace_ids(None, "info", {"event": "x"}) == {
            "event": "x",
            "trace_id": f"{ctx.trace_id:032x}",
            "span_id": f"{ctx.span_id:016x}",
        }
    assert tracing.log_processors() == [add_trace_ids]


def test_an_unsampled_trace_gives_events_no_traceparent(spans) -> None:
    unsampled = span_context_of(TP.removesuffix("01") + "00")
    assert unsampled is not None
    with trace.use_span(trace.NonRecordingSpan(unsampled)):
        assert current_traceparent() is None
    sampled = span_context_of(TP)
    assert sampled is not None
    with trace.use_span(trace.NonRecordingSpan(sampled)):
        assert current_traceparent() == TP


def test_one_traced_event_makes_the_apply_its_child(spans) -> None:
    with applying([event(TP), event(None, 1)]):
        pass
    [apply] = spans.get_finished_spans()
    assert apply.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert apply.parent is not None and apply.parent.span_id == 0xB7AD6B7169203331
    assert apply.links == ()
    assert apply.attributes == {"likeview.events": 2, "likeview.traced_events": 1}


def test_a_batch_of_traced_events_links_to_each_of_them_bounded(spans) -> None:
    n = MAX_LINKS + 10
    events = [event(f"00-{i + 1:032x}-{i + 1:016x}-01", i) for i in range(n)]
    events.append(event(events[0].traceparent, n))  # the same request twice: one link
    with tracing.tracer.start_as_current_span("unrelated"), applying(events):
        pass
    apply = next(s for s in spans.get_finished_spans() if s.name == "aggregator apply")
    assert apply.parent is None  # its own trace, never the worker task's
    assert [link.context.trace_id for link in apply.links] == list(range(1, MAX_LINKS + 1))
    assert apply.kind == SpanKind.CONSUMER


def test_client_calls_outside_a_trace_are_not_recorded(spans) -> None:
    tracer = tracing.tracer
    with tracer.start_as_current_span("XREADGROUP", kind=SpanKind.CLIENT) as orphan:
        assert not orphan.is_recording()
    with (
        tracer.start_as_current_span("apply"),
        tracer.start_as_current_span("XACK", kind=SpanKind.CLIENT) as child,
    ):
        assert child.is_recording()
    assert [s.name for s in spans.get_finished_spans()] == ["XACK", "apply"]


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "stock"])
@pytest.mark.parametrize(
    ("query", "name", "span"),
    [
        ("query Q { __typename }", "Q", "query Q"),
        ("{ __typename }", None, "query"),
        ("query Q { nope }", "Q", "query Q"),  # invalid, yet its type is known
        ("query Q {", "Q", None),  # no parse: no type
        ("query Q { __typename }", None, "query Q"),  # the document names it
    ],
)
async def test_every_operation_gets_one_span(spans, fast_paths, query, name, span) -> None:
    schema = build_schema(fast_paths=fast_paths)
    trace_operations(schema)
    await schema.execute(query, operation_name=name)
    [only] = spans.get_finished_spans()
    assert only.name == (span or "graphql")
    named = span.split(" ")[1] if span and " " in span else None
    assert (only.attributes or {}).get("graphql.operation.name") == named


def test_with_tracing_off_nothing_is_imported_or_installed() -> None:
    code = (
        "import sys\n"
        "import main, tracing\n"
        "settings = main.Settings()\n"
        "app = main.create_app(settings)\n"
        "main.configure_logging(settings)\n"
        "assert tracing.tracer is None\n"
        # redis-py 8 imports OpenTelemetry's API and metrics SDK by itself when they are
        # installed (its own metrics, off unless set up): tracing's parts stay out.
        "heavy = ('opentelemetry.sdk.trace', 'opentelemetry.instrumentation', "
        "'opentelemetry.exporter', 'tracing.setup', 'tracing.context')\n"
        "assert not [m for m in sys.modules if m.startswith(heavy)], 'imported'\n"
        "from opentelemetry import trace\n"
        "assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'\n"
        "import redis.asyncio\n"
        "assert not hasattr(redis.asyncio.Redis.execute_command, '__wrapped__')\n"
        "assert 'OpenTelemetry' not in repr(app.user_middleware)\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_the_global_provider_is_left_alone_in_tests(spans) -> None:
    assert not hasattr(trace.get_tracer_provider(), "add_span_processor")


@pytest.mark.parametrize(
    "name", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME"]
)
def test_the_settings_are_documented(name) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"| `{name}` |" in readme
    assert name in (ROOT / "docs" / "OPERATIONS.md").read_text()
