"""Every error a client sees carries ``extensions.code``; no stack trace leaves."""

from __future__ import annotations

import logging
import re

from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors

from domain.errors import DomainError
from domain.outages import as_unavailable

log = logging.getLogger("likeview.errors")

INTERNAL = "INTERNAL_SERVER_ERROR"
# Client errors are logged this long at most: a message can quote the client's input.
LOGGED_MESSAGE_CHARS = 200


def log_client_errors(errors: list[GraphQLError]) -> None:
    """What strawberry's ``process_errors`` logs instead of every error at ERROR
    with the source location printed (for a 1 MB query, a 1 MB log record).

    A client's mistake (syntax, validation, variables, domain rules) is an INFO
    line with the start of its message. A bug is logged, with its traceback,
    where ``ErrorCodes`` masks it.
    """
    for error in errors:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError | DomainError):
            log.info("client error: %s", error.message[:LOGGED_MESSAGE_CHARS])


# Codes by what failed. Parse errors are GraphQLSyntaxError; the document's own
# validation tags its errors (schema.documents); a GraphQLError of graphql-core's
# that reaches a result without either happened while running the operation with
# the client's values: variable coercion, or an argument graphql-core refused.
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"


def _code_for_graphql(error: GraphQLError) -> str:
    if isinstance(error, GraphQLSyntaxError):
        return PARSE_FAILED
    return BAD_USER_INPUT


# graphql-core's suggestions: " Did you mean 'x'?", "... 'x', 'y', or 'z'?",
# " Did you mean the enum value 'X'?", also mid-message (before "Found: ...").
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def without_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


class ErrorCodes(MaskErrors):
    """MaskErrors that keeps what a client can act on and hides the rest.

    Domain errors keep their message and get their code; graphql-core's own
    errors (syntax, validation, variable coercion) keep their message so a
    client can see what was wrong with its query; anything else is a bug:
    logged with its traceback, shown only as a generic message.
    """

    def __init__(self, *, hide_suggestions: bool = False) -> None:
        super().__init__(error_message="Internal server error")
        # With introspection off, "Did you mean 'engagementSummary'?" would tell
        # the schema just the same.
        self._hide_suggestions = hide_suggestions

    def _process_result(self, result: object) -> None:
        # MaskErrors checks a runtime Protocol here, which costs about 10 µs per
        # operation and per subscription push; the attribute is all it looks for.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._classify(e) for e in errors]

    def _with_code(
        self, error: GraphQLError, message: str, code: str, more: dict[str, object] | None = None
    ) -> GraphQLError:
        if self._hide_suggestions:
            message = without_suggestions(message)
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={**(error.extensions or {}), **(more or {}), "code": code},
        )

    def _classify(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, DomainError):
            return self._with_code(error, original.message, original.code, original.extensions())
        if original is None or isinstance(original, GraphQLError):
            if error.extensions and "code" in error.extensions:
                if self._hide_suggestions and _SUGGESTION.search(error.message):
                    return self._with_code(error, error.message, error.extensions["code"])
                return error
            return self._with_code(error, error.message, _code_for_graphql(error))
        unavailable = as_unavailable(original)
        if unavailable is not None:
            # A store that did not answer is not a bug: one line, no traceback.
            log.warning("store unavailable: %s: %s", type(original).__name__, original)
            return self._with_code(
                error, unavailable.message, unavailable.code, unavailable.extensions()
            )
        log.error("unexpected error in resolver", exc_info=original)
        return self._with_code(error, self.error_message, INTERNAL)
