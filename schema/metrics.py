"""GraphQL operation metrics: one counter and one histogram observation per operation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter, Histogram
from strawberry.types import ExecutionContext

from schema.errors import ErrorCodes

OPERATIONS = Counter("likeview_graphql_operations_total", "GraphQL operations", ["type", "outcome"])
LATENCY = Histogram(
    "likeview_graphql_operation_seconds",
    "GraphQL operation latency",
    ["type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


# The labelled children, looked up once: prometheus_client's labels() validates
# and locks on every call, about 2% of a small query's CPU.
_CHILDREN: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


def record(kind: str, failed: bool, started: float) -> None:
    _child(OPERATIONS, kind, "error" if failed else "ok").inc()
    if kind != "subscription":  # a subscription's duration is its connection's
        _child(LATENCY, kind).observe(time.perf_counter() - started)


def observe(ctx: ExecutionContext, started: float) -> None:
    try:
        kind = ctx.operation_type.value
    except RuntimeError:  # no document: the query did not parse
        kind = "unknown"
    result = ctx.result
    record(kind, result is None or bool(getattr(result, "errors", None)), started)


class ObservedErrorCodes(ErrorCodes):
    """ErrorCodes plus operation metrics, as one extension.

    Two concerns in one class on purpose: strawberry builds a hook context per
    extension for every operation and every subscription push, and that cost
    showed in the profiles. The error rules stay in ``schema.errors``.
    """

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield from super().on_operation()
        observe(self.execution_context, started)
