"""W3C trace context (``traceparent``) as events carry it (domain/events.py)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def current_traceparent() -> str | None:
    """The active span's traceparent, or None when no span is active or its trace is
    not sampled (OTEL_TRACES_SAMPLER): an event then carries nothing to follow."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def span_context_of(traceparent: str | None) -> SpanContext | None:
    """The remote span a traceparent names, or None when it is absent or invalid
    (an event's field is data from the log: never trusted to parse)."""
    if not traceparent or not isinstance(traceparent, str):
        return None
    context = _PROPAGATOR.extract({"traceparent": traceparent})
    ctx = trace.get_current_span(context).get_span_context()
    return ctx if ctx.is_valid else None
