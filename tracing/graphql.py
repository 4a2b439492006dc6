"""One span per GraphQL operation over HTTP, named "<type> <name>" (semantic
conventions: graphql.operation.type, graphql.operation.name).

It wraps the schema's execute(), the one entry of every HTTP operation: the prepared
fast path (schema/prepared.py) runs no schema extensions, so strawberry's
OpenTelemetryExtension would miss those operations, and it opens a span per resolver
too (measured in docs/PERFORMANCE.md, "Tracing overhead"). Subscriptions (WebSocket)
are under the ASGI connection's span.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, get_operation_ast
from opentelemetry.trace import SpanKind

import tracing

OPERATION = "graphql.operation.name"
TYPE = "graphql.operation.type"


def _operation(schema: Any, query: Any, name: str | None) -> tuple[str, str | None] | None:
    """The operation's type and name (the document's, when the request named none),
    from the document cache execute() just filled (a hit, not a second parse, unless
    the text was too long to cache)."""
    if type(query) is not str:
        return None
    rules = schema.document_rules
    try:
        document = rules.cache.document(query, rules.parse_options)
    except GraphQLError:
        return None
    operation = get_operation_ast(document, name)
    if not isinstance(operation, OperationDefinitionNode):
        return None
    return operation.operation.value, operation.name.value if operation.name else None


def trace_operations(schema: Any) -> None:
    """Wrap ``schema.execute`` (this schema instance only) in the operation span."""
    execute = schema.execute

    async def traced_execute(query: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("operation_name")
        with tracing.tracer.start_as_current_span("graphql", kind=SpanKind.INTERNAL) as span:
            result = await execute(query, *args, **kwargs)
            found = _operation(schema, query, name if isinstance(name, str) else None)
            if found is not None:
                kind, name = found
                span.set_attribute(TYPE, kind)
                span.update_name(f"{kind} {name}" if name else kind)
                if name is not None:
                    span.set_attribute(OPERATION, name)
            errors = getattr(result, "errors", None)
            if errors:
                span.set_attribute("graphql.errors", len(errors))
                # A client's mistake is not the server's error: the codes say which.
                codes = {str((e.extensions or {}).get("code")) for e in errors}
                span.set_attribute("likeview.error_codes", sorted(codes))
            return result

    schema.execute = traced_execute
