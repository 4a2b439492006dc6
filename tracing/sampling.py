"""The sampler: OTEL_TRACES_SAMPLER's choice, less the client calls outside any trace.

Every worker polls Redis (a blocking XREADGROUP every half second each, lag probes,
timers): with the redis instrumentation each poll would be a trace of one span,
thousands an hour of nothing. A Redis or MongoDB call (a CLIENT span) is kept only
inside a trace (a request's, an aggregator batch's); the rest is left to the sampler
the environment chose (parent-based, always on, by default).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState, get_current_span
from opentelemetry.util.types import Attributes

_DROP = SamplingResult(Decision.DROP)


class NoOrphanClientSpans(Sampler):
    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if (
            kind is SpanKind.CLIENT
            and not get_current_span(parent_context).get_span_context().is_valid
        ):
            return _DROP
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoOrphanClientSpans{{{self._inner.get_description()}}}"
