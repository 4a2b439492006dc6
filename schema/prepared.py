"""The fast path for an operation whose document is cached and valid.

Strawberry's ``Schema.execute`` builds, for every operation, an execution
context, an instance of each extension, an extension runner, a middleware
manager and four nested hook contexts (operation, parse, validate, execute),
then asks graphql-core to execute. For a like that is a fifth of the GraphQL
layer's CPU, spent to run two extensions whose work is known in advance: the
cached parse and validation (``CachedDocuments``) and the error codes and
metrics (``ObservedErrorCodes``).

``PreparedExecution.run`` does that work directly when the query text parses,
validates, names one operation of an allowed type, and so can only fail with
the client's variables or in a resolver. Everything else (syntax and
validation errors, an ambiguous or unknown operation, a forbidden operation
type) returns None, and strawberry's own path answers it, with its errors and
status codes. The result is what that path returns: the same data, the same
errors after ``process_errors`` and the same codes, the same metrics.

Turned off with the other fast paths (FAST_PATHS=false): it relies on what
strawberry's execute does, not on an API of strawberry's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, execute, specified_rules
from graphql.execution import ExecutionResult as GraphQLExecutionResult
from graphql.utilities import get_operation_ast
from strawberry.execution import optimized_is_awaitable
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.await_maybe import await_maybe

from schema.documents import DocumentRules
from schema.errors import ErrorCodes
from schema.metrics import record

_RULES = tuple(specified_rules)


class PreparedExecution:
    def __init__(
        self,
        schema: Any,
        rules: DocumentRules,
        codes: ErrorCodes,
        process_errors: Callable[[list[GraphQLError]], None],
        executor_class: type,
    ) -> None:
        self._schema = schema  # graphql-core's schema
        self._rules = rules
        self._codes = codes  # stateless: one instance serves every operation
        self._process_errors = process_errors
        self._executor_class = executor_class

    def operation(
        self,
        query: str,
        operation_name: str | None,
        allowed: Collection[OperationType],
    ) -> tuple[Any, OperationType] | None:
        """The cached document and its operation's type, or None for strawberry's path."""
        rules = self._rules
        try:
            document = rules.cache.document(query, rules.parse_options)
        except GraphQLError:
            return None
        if rules.validate(self._schema, document, _RULES):
            return None
        # None for several operations without a name, and for an unknown name.
        operation = get_operation_ast(document, operation_name)
        if not isinstance(operation, OperationDefinitionNode):
            return None
        kind = OperationType(operation.operation.value)
        if kind not in allowed:
            return None
        return document, kind

    async def run(
        self,
        prepared: tuple[Any, OperationType],
        variable_values: dict[str, Any] | None,
        context_value: Any,
        root_value: Any,
        operation_name: str | None,
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        document, kind = prepared
        started = time.perf_counter()
        result: GraphQLExecutionResult = await await_maybe(
            execute(
                self._schema,
                document,
                root_value=root_value,
                context_value=context_value,
                variable_values=variable_values,
                operation_name=operation_name,
                executor_class=self._executor_class,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                operation_extensions=operation_extensions,
            )
        )
        errors = result.errors
        if errors:
            self._process_errors(errors)
            errors = self._codes._process_errors(errors)
        record(kind.value, bool(errors), started)
        return ExecutionResult(data=result.data, errors=errors, extensions={})
