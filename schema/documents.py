"""Parse and validate each distinct query text once, in one extension, within bounds.

Why not strawberry's ParserCache + ValidationCache + AddValidationRules:

* ParserCache parses in ``on_parse``, outside the try/except that turns a
  GraphQLSyntaxError into a normal error response, so a syntax error escaped as
  an internal failure (no ``extensions.code`` over HTTP; a bare ``complete``
  over WebSocket). On failure we leave the document unset: strawberry then
  parses the query itself, inside its handler, and reports the error properly
  (with the same token limit, set in ``parse_options``).
* ValidationCache keys its LRU by the document, and graphql-core's AST nodes
  are frozen dataclasses whose hash walks the whole tree on every call (about
  9 µs for a small mutation, every request). Documents here come from the parse
  cache, one object per query text, so validation is keyed by identity.
* Both bound their caches by entries, and a parsed document weighs about a
  hundred times its text: 1,024 entries of 1 MB queries would hold gigabytes.
  Here the cache is bounded by the bytes of query text it holds, and a text
  above a small size is never cached.
* Each extension costs a hook context per operation and per subscription push;
  three became one.

The document limits (``schema.limits``) run before graphql-core's rules, in time
linear in the document: a document over a limit is refused without running the
rest of validation.

A cached document also carries the executor's per-operation state (compiled
plans, shared subscription results: ``state_of``), so all that a query text
costs in memory goes when its entry goes.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
)
from graphql.error import GraphQLError
from strawberry.extensions import SchemaExtension

# strawberry's own validation: graphql-core's rules plus strawberry's (oneOf, Maybe).
from strawberry.schema.schema import validate_document

from schema.limits import DocumentLimits, Limits, ListBound

VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


@dataclass(frozen=True, slots=True)
class DocumentPolicy:
    """What a query text may be, and how much of them the process keeps."""

    limits: Limits = field(default_factory=Limits)
    # graphql-core stops lexing past this many tokens: parsing a hostile text
    # costs at most this much, whatever its length. The full introspection
    # query is under 200 tokens; large batches belong in variables.
    max_tokens: int = 2_000
    # Characters of query text kept parsed and validated, and the largest text
    # kept. A parsed document weighs up to about a hundred times its text.
    cache_bytes: int = 1024 * 1024
    cache_max_query_bytes: int = 16 * 1024


@dataclass(slots=True)
class _Entry:
    key: tuple[str, tuple[tuple[str, Any], ...]]
    document: DocumentNode
    weight: int
    # id(schema) -> (schema, errors); the schema is kept so its id stays its own.
    validated: dict[int, tuple[GraphQLSchema, list[GraphQLError]]] = field(default_factory=dict)
    # id(operation) -> the executor's state for that operation.
    states: dict[int, dict[Any, Any]] = field(default_factory=dict)


# Every cached document's operations, by id: lets the executor find the state of
# the operation it runs (it is given the operation, not the query text). An entry
# keeps its document, and so its operations, alive: no id here is reused.
_STATES: dict[int, dict[Any, Any]] = {}


def state_of(operation: OperationDefinitionNode) -> dict[Any, Any] | None:
    """Per-operation state that lives as long as the document's cache entry, or None
    when the document is not cached (nothing about it should outlive the request)."""
    return _STATES.get(id(operation))


class DocumentCache:
    """Parsed documents and their validation errors by query text, bounded by bytes."""

    def __init__(self, max_bytes: int, max_query_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._max_query_bytes = min(max_query_bytes, max_bytes)
        self._entries: OrderedDict[tuple[str, tuple[tuple[str, Any], ...]], _Entry] = OrderedDict()
        self._by_document: dict[int, _Entry] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def document(self, query: str, options: tuple[tuple[str, Any], ...]) -> DocumentNode:
        """The parsed document; raises GraphQLError (never cached) when it does not parse."""
        key = (query, options)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry.document
        document = parse(query, **dict(options))
        weight = len(query)
        if weight <= self._max_query_bytes:
            self._add(_Entry(key, document, weight))
        return document

    def errors(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        validate: Any,
    ) -> list[GraphQLError]:
        """``validate(schema, document)``, remembered for cached documents."""
        entry = self._by_document.get(id(document))
        if entry is None or entry.document is not document:
            return list(validate(schema, document))
        hit = entry.validated.get(id(schema))
        if hit is not None:
            return hit[1]
        errors = list(validate(schema, document))
        entry.validated[id(schema)] = (schema, errors)
        return errors

    def _add(self, entry: _Entry) -> None:
        self._entries[entry.key] = entry
        self._by_document[id(entry.document)] = entry
        for definition in entry.document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                state: dict[Any, Any] = {}
                entry.states[id(definition)] = state
                _STATES[id(definition)] = state
        self.bytes += entry.weight
        while self.bytes > self._max_bytes:
            _, old = self._entries.popitem(last=False)
            self._forget(old)

    def _forget(self, entry: _Entry) -> None:
        self.bytes -= entry.weight
        self._by_document.pop(id(entry.document), None)
        for op_id in entry.states:
            _STATES.pop(op_id, None)


class DocumentRules:
    """One policy's parse options, cache and checks, shared by every operation.

    Build it once per schema (``build_schema``): the cache is keyed by query
    text and schema only, so everything that decides validation lives here.
    """

    def __init__(
        self,
        policy: DocumentPolicy,
        extra_rules: tuple[type[ASTValidationRule], ...] = (),
        list_bounds: dict[tuple[str, str], ListBound] | None = None,
    ) -> None:
        self.policy = policy
        self.cache = DocumentCache(policy.cache_bytes, policy.cache_max_query_bytes)
        self._extra = extra_rules
        self._list_bounds = list_bounds or {}
        self._limits: dict[int, tuple[GraphQLSchema, DocumentLimits]] = {}
        self.parse_options: tuple[tuple[str, Any], ...] = (("max_tokens", policy.max_tokens),)

    def limits_for(self, schema: GraphQLSchema) -> DocumentLimits:
        hit = self._limits.get(id(schema))
        if hit is None:
            hit = self._limits[id(schema)] = (
                schema,
                DocumentLimits(schema, self.policy.limits, self._list_bounds),
            )
        return hit[1]

    def validate(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        def run(schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
            refused = self.limits_for(schema).check(document)
            if refused:
                return refused
            return [
                _coded(e, VALIDATION_FAILED)
                for e in validate_document(schema, document, (*rules, *self._extra))
            ]

        return self.cache.errors(schema, document, run)


DEFAULT_RULES = DocumentRules(DocumentPolicy())


class CachedDocuments(SchemaExtension):
    """Cached parse (with a token limit), then the document limits and the default
    rules plus the policy's extra rules, cached per document.
    """

    def __init__(self, rules: DocumentRules | None = None) -> None:
        super().__init__()
        self._rules = rules or DEFAULT_RULES

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        # Also for strawberry's own parse after ours failed: it reads these.
        ctx.parse_options["max_tokens"] = self._rules.policy.max_tokens
        if ctx.query is not None:
            with contextlib.suppress(GraphQLError):
                ctx.graphql_document = self._rules.cache.document(
                    ctx.query, self._rules.parse_options
                )
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None:
            errors = self._rules.validate(ctx.schema._schema, document, ctx.validation_rules)
            if not errors and _ambiguous(ctx, document):
                errors = [
                    GraphQLError(
                        "Must provide operation name if query contains multiple operations.",
                        extensions={"code": VALIDATION_FAILED},
                    )
                ]
            ctx.pre_execution_errors = errors
        yield


def _coded(error: GraphQLError, code: str) -> GraphQLError:
    """The error with ``code``: validation errors are coded by the step that found
    them, not by their wording (ErrorCodes keeps a code that is there)."""
    if error.extensions and "code" in error.extensions:
        return error
    return GraphQLError(
        error.message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        None,
        {**(error.extensions or {}), "code": code},
    )


def _ambiguous(ctx: Any, document: DocumentNode) -> bool:
    """Several operations and no operationName: the spec requires an error, while
    strawberry would run the first one (it takes the first operation's name)."""
    if getattr(ctx, "_provided_operation_name", None) is not None:
        return False
    operations = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            operations += 1
            if operations > 1:
                return True
    return False
