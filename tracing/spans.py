"""The workers' spans: the aggregator's apply of a batch, and the live push after it.

A like's event carries its request's traceparent (domain/events.py). A batch that
holds one traced event continues that trace (the apply span is its child); a batch
of several is a trace of its own, linked to each event's span (at most MAX_LINKS,
so a storm does not make one span of thousands of links).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanKind

import tracing
from domain.events import EngagementEvent
from tracing.context import span_context_of

MAX_LINKS = 32


@contextmanager
def applying(events: Iterable[EngagementEvent]) -> Iterator[Span]:
    count = 0
    seen: set[str] = set()
    links: list[Link] = []
    for event in events:
        count += 1
        tp = event.traceparent
        if tp is None or tp in seen or len(links) >= MAX_LINKS:
            continue
        seen.add(tp)
        ctx = span_context_of(tp)
        if ctx is not None:
            links.append(Link(ctx))
    # An empty context, not the current one: a batch is never part of whatever
    # trace the worker's task happened to start in.
    parent = Context()
    if len(links) == 1:
        parent = trace.set_span_in_context(NonRecordingSpan(links[0].context), parent)
        links = []
    attributes = {"likeview.events": count, "likeview.traced_events": len(seen)}
    with tracing.tracer.start_as_current_span(
        "aggregator apply",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
    ) as span:
        yield span


@contextmanager
def publishing(channels: int) -> Iterator[Span]:
    """The live push of a batch's changes (inside the apply span: its child)."""
    with tracing.tracer.start_as_current_span(
        "live publish", kind=SpanKind.PRODUCER, attributes={"likeview.channels": channels}
    ) as span:
        yield span
