"""Parse and validate each distinct query text once, in one extension.

Why not strawberry's ParserCache + ValidationCache + AddValidationRules:

* ParserCache parses in ``on_parse``, outside the try/except that turns a
  GraphQLSyntaxError into a normal error response, so a syntax error escaped as
  an internal failure (no ``extensions.code`` over HTTP; a bare ``complete``
  over WebSocket). On failure we leave the document unset: strawberry then
  parses the query itself, inside its handler, and reports the error properly.
* ValidationCache keys its LRU by the document, and graphql-core's AST nodes
  are frozen dataclasses whose hash walks the whole tree on every call (about
  9 µs for a small mutation, every request). Documents here come from the parse
  cache, one object per query text, so validation is keyed by identity.
* Each extension costs a hook context per operation and per subscription push;
  three became one.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLSchema, parse
from graphql.error import GraphQLError
from strawberry.extensions import SchemaExtension

# strawberry's own validation: graphql-core's rules plus strawberry's (oneOf, Maybe).
from strawberry.schema.schema import validate_document

MAXSIZE = 1024


@lru_cache(maxsize=MAXSIZE)
def _parse(query: str, options: tuple[tuple[str, Any], ...]) -> DocumentNode:
    # lru_cache does not keep exceptions: a bad query is parsed (and refused) again.
    return parse(query, **dict(options))


class _Validated:
    """Validation errors by (schema, document) identity, bounded LRU."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        # The entry keeps its schema and document alive, so their ids stay theirs.
        self._entries: OrderedDict[
            tuple[int, int], tuple[GraphQLSchema, DocumentNode, list[GraphQLError]]
        ] = OrderedDict()

    def errors(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        key = (id(schema), id(document))
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry[2]
        errors = validate_document(schema, document, rules)
        self._entries[key] = (schema, document, errors)
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)
        return errors


_VALIDATED = _Validated(MAXSIZE)


class CachedDocuments(SchemaExtension):
    """Cached parse, cached validation with the default rules plus ``extra_rules``.

    ``extra_rules`` must be the same for every instance (the cache is process
    wide and keyed by schema and document only): pass one module-level list.
    """

    def __init__(self, extra_rules: tuple[type[ASTValidationRule], ...] = ()) -> None:
        super().__init__()
        self._extra = extra_rules

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.query is not None:
            with contextlib.suppress(GraphQLError):
                options = tuple(sorted(ctx.parse_options.items())) if ctx.parse_options else ()
                ctx.graphql_document = _parse(ctx.query, options)
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None:
            rules = (*ctx.validation_rules, *self._extra)
            ctx.pre_execution_errors = _VALIDATED.errors(ctx.schema._schema, document, rules)
        yield
