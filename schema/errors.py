"""Every error a client sees carries ``extensions.code``; no stack trace leaves."""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from domain.errors import DomainError

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


def _code_for_graphql(error: GraphQLError) -> str:
    message = error.message
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith(
        ("Variable '$", "Argument '", "Expected value of type", "Int cannot", "Float cannot")
    ):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


class ErrorCodes(MaskErrors):
    """MaskErrors that keeps what a client can act on and hides the rest.

    Domain errors keep their message and get their code; graphql-core's own
    errors (syntax, validation, variable coercion) keep their message so a
    client can see what was wrong with its query; anything else is a bug:
    logged with its traceback, shown only as a generic message.
    """

    def __init__(self) -> None:
        super().__init__(error_message="Internal server error")

    def _process_result(self, result: object) -> None:
        # MaskErrors checks a runtime Protocol here, which costs about 10 µs per
        # operation and per subscription push; the attribute is all it looks for.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._classify(e) for e in errors]

    def _with_code(self, error: GraphQLError, message: str, code: str) -> GraphQLError:
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={**(error.extensions or {}), "code": code},
        )

    def _classify(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, DomainError):
            return self._with_code(error, original.message, original.code)
        if original is None or isinstance(original, GraphQLError):
            if error.extensions and "code" in error.extensions:
                return error
            return self._with_code(error, error.message, _code_for_graphql(error))
        log.error("unexpected error in resolver", exc_info=original)
        return self._with_code(error, self.error_message, INTERNAL)
