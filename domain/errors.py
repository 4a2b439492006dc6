"""Expected failures of the use cases.

Each carries a stable machine-readable ``code`` that the API layer exposes as
``extensions.code``; clients branch on the code, people read the message.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadUserInput(DomainError):
    code = "BAD_USER_INPUT"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Conflict(DomainError):
    code = "CONFLICT"


class ContentNotFound(DomainError):
    code = "CONTENT_NOT_FOUND"


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyKeyInUse(DomainError):
    code = "IDEMPOTENCY_KEY_IN_USE"


class NotFound(DomainError):
    code = "NOT_FOUND"
