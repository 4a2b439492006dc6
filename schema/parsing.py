"""ParserCache that leaves syntax errors to Strawberry's own error handling.

Strawberry's ParserCache parses in ``on_parse``, outside the try/except that turns
a GraphQLSyntaxError into a normal error response, so a syntax error escaped as
an internal failure (no ``extensions.code`` over HTTP; a bare ``complete`` over
WebSocket). On failure we leave the document unset: Strawberry then parses the
query itself, inside its handler, and reports the error properly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from graphql.error import GraphQLError
from strawberry.extensions import ParserCache


class SafeParserCache(ParserCache):
    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        with contextlib.suppress(GraphQLError):
            ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
        yield
