"""Installs tracing for the process: the provider, its exporter, the instrumentations.

Imported only when tracing is on (tracing.start). The spans go to one batch
processor (a background thread exports them; a request only appends to its queue).
redis-py's and pymongo's instrumentations patch the client classes and register a
command listener process-wide, so every client (motor's too, which runs pymongo)
is traced; the ASGI middleware and the GraphQL operation span are added by main.py
where the app and the schema are built (asgi_middleware, tracing.graphql).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

import tracing
from domain import events
from tracing.context import current_traceparent
from tracing.sampling import NoOrphanClientSpans

# Probes and scrapes: a span each would be noise at every scrape interval.
EXCLUDED_URLS = "/healthz,/readyz,/metrics"

_provider: TracerProvider | None = None


def _exporter(config: tracing.TracingConfig) -> SpanExporter:
    kind = (config.exporter or "otlp").strip().lower()
    if kind == "console":
        return ConsoleSpanExporter(service_name=config.service_name)
    if kind != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={config.exporter!r}: use otlp, console or none")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if config.endpoint:
        # As the SDK derives it from OTEL_EXPORTER_OTLP_ENDPOINT (the per-signal
        # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, when set, wins inside the exporter).
        return OTLPSpanExporter(endpoint=config.endpoint.rstrip("/") + "/v1/traces")
    return OTLPSpanExporter()


def install(
    config: tracing.TracingConfig,
    exporter: SpanExporter | None = None,
    *,
    batch: bool = True,
    set_global: bool = True,
) -> TracerProvider:
    """Install tracing (once per process; a second call returns the first provider).

    Tests pass their own ``exporter`` (the SDK's InMemorySpanExporter), ``batch=False``
    so spans are there when a request returns, and ``set_global=False`` because the
    API's global provider can be set once per process (uninstall() undoes the rest).
    """
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(
        resource=Resource.create({"service.name": config.service_name}),
        sampler=NoOrphanClientSpans(_get_from_env_or_default()),
    )
    chosen = exporter if exporter is not None else _exporter(config)
    provider.add_span_processor(
        BatchSpanProcessor(chosen) if batch else SimpleSpanProcessor(chosen)
    )
    if set_global:
        trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    PymongoInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    tracing.tracer = provider.get_tracer("likeview")
    events.traceparent_source = current_traceparent
    return provider


def uninstall() -> None:
    """Undo install() (tests): the instrumentations, the hooks, the provider."""
    global _provider
    if _provider is None:
        return
    RedisInstrumentor().uninstrument()
    PymongoInstrumentor().uninstrument()
    events.traceparent_source = None
    tracing.tracer = None
    _provider.shutdown()
    _provider = None


def asgi_middleware() -> tuple[Any, dict[str, Any]]:
    """The ASGI instrumentation, as (class, options) for a Starlette Middleware.

    No spans for each receive and send (a span per body chunk and per WebSocket
    message would multiply the cost), and no HTTP metrics (Prometheus has them).
    """
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware, {
        "excluded_urls": EXCLUDED_URLS,
        "tracer_provider": _provider,
        "meter_provider": NoOpMeterProvider(),
        "exclude_spans": ["receive", "send"],
    }
