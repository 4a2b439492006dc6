"""GraphQL operation metrics: one counter and one histogram observation per operation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from graphql.error import GraphQLError
from prometheus_client import Counter, Histogram
from strawberry.types import ExecutionContext

from schema.errors import INTERNAL, ErrorCodes
from workers.metrics import MS_BUCKETS

OPERATIONS = Counter("likeview_graphql_operations_total", "GraphQL operations", ["type", "outcome"])
# A like takes 1 to 3 ms and a cached query well under 1 ms (docs/PERFORMANCE.md):
# the buckets are dense there, so a p99 of 2 ms and one of 4 ms tell apart.
LATENCY = Histogram(
    "likeview_graphql_operation_seconds",
    "GraphQL operation latency",
    ["type"],
    buckets=MS_BUCKETS,
)
ERRORS = Counter(
    "likeview_graphql_errors_total",
    "Errors in GraphQL results, by extensions.code (INTERNAL_SERVER_ERROR: a bug or "
    "a failed dependency; the others are the client's)",
    ["code"],
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


# Exported at 0 from the start, so the error-rate alert's rate() sees the first one.
_child(ERRORS, INTERNAL)


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

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        # Both execution paths (strawberry's and schema/prepared.py's) come here.
        out = super()._process_errors(errors)
        for error in out:
            code = (error.extensions or {}).get("code", "")
            _child(ERRORS, code if isinstance(code, str) else "").inc()
        return out

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield from super().on_operation()
        observe(self.execution_context, started)
