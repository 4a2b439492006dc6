"""GraphQL operation metrics: one counter and one histogram observation per operation."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from strawberry.extensions import SchemaExtension

OPERATIONS = Counter("likeview_graphql_operations_total", "GraphQL operations", ["type", "outcome"])
LATENCY = Histogram(
    "likeview_graphql_operation_seconds",
    "GraphQL operation latency",
    ["type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        ctx = self.execution_context
        try:
            kind = ctx.operation_type.value
        except RuntimeError:  # no document: the query did not parse
            kind = "unknown"
        result = ctx.result
        failed = result is None or bool(getattr(result, "errors", None))
        OPERATIONS.labels(kind, "error" if failed else "ok").inc()
        if kind != "subscription":  # a subscription's duration is its connection's
            LATENCY.labels(kind).observe(time.perf_counter() - start)
