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

    def extensions(self) -> dict[str, object]:
        """What a client gets in ``extensions`` besides the code."""
        return {}


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


class RateLimited(DomainError):
    """Too many requests from one user, device or address (domain/rate_limits.py);
    ``retry_after_ms`` says when the same request would pass. Which limit it was is
    not said."""

    code = "RATE_LIMITED"

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"too many requests; retry after {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms

    def extensions(self) -> dict[str, object]:
        return {"retryAfterMs": self.retry_after_ms}


class Unavailable(DomainError):
    """A store the operation needs (MongoDB, or Redis where nothing can stand in for
    it) did not answer in time. Nothing half-done is left: a write either landed
    (and a retry with the same ``requestId`` replays it) or did not happen.
    ``retry_after_ms`` is a hint, not a promise."""

    code = "UNAVAILABLE"

    def __init__(
        self,
        message: str = "a backing store is unavailable; retry shortly",
        retry_after_ms: int = 1000,
    ) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms

    def extensions(self) -> dict[str, object]:
        return {"retryAfterMs": self.retry_after_ms}
