"""Traces: OpenTelemetry spans over OTLP, only when configured (docs/OPERATIONS.md, "Traces").

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_TRACES_EXPORTER`` (other
than ``none``) is set. This module imports nothing of OpenTelemetry: with tracing off
nothing of it is imported or installed, ``tracer`` stays None, and the only cost on a
hot path is that None test (the like's traceparent, the aggregator's batch). With it
on, ``tracing.setup`` installs the provider and the instrumentations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The process's tracer while tracing is on (tracing.setup.install); None while off.
tracer: Any = None

SERVICE_NAME = "likeview"
NONE = "none"


@dataclass(frozen=True, slots=True)
class TracingConfig:
    # OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL (OTLP over HTTP; the
    # exporter posts to <endpoint>/v1/traces).
    endpoint: str | None = None
    # OTEL_TRACES_EXPORTER: "otlp" (the default when tracing is on), "console", "none".
    exporter: str | None = None
    service_name: str = SERVICE_NAME

    @property
    def enabled(self) -> bool:
        kind = (self.exporter or "").strip().lower()
        if kind == NONE:
            return False
        return bool(kind) or bool(self.endpoint)


def active() -> bool:
    return tracer is not None


def start(config: TracingConfig) -> bool:
    """Install tracing for this process when ``config`` asks for it (once; later
    calls keep the first installation). Whether tracing is on."""
    if tracer is None and config.enabled:
        from tracing.setup import install

        install(config)
    return tracer is not None


def log_processors() -> list[Any]:
    """structlog processors for main.configure_logging: trace_id and span_id on the
    lines written inside a span, while tracing is on; none otherwise."""
    if tracer is None:
        return []
    from tracing.logs import add_trace_ids

    return [add_trace_ids]
