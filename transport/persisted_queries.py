"""Automatic persisted queries (Apollo's APQ protocol), at the HTTP layer.

A client sends ``extensions.persistedQuery = {version: 1, sha256Hash}`` without
the query text (over POST, or GET so that a CDN can cache it); an unknown hash
is answered with ``PERSISTED_QUERY_NOT_FOUND``, and the client then sends the
text with its hash once, which registers it. A text is registered only when it
matches its hash and validates, and only up to ``max_query_bytes`` (a longer
one runs but is not kept: its client just keeps sending it). The store is
Redis (storage/redis_persisted_queries.py), so every API process knows every
hash, and it forgets a text a while after its last registration.

Here rather than in a schema extension: an extension costs a hook context on
every operation and every subscription push, and APQ is HTTP only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, Protocol

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
BAD_USER_INPUT = "BAD_USER_INPUT"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PersistedQueries(Protocol):
    async def get(self, sha256_hex: str) -> str | None: ...

    async def put(self, sha256_hex: str, query: str) -> None: ...


class PersistedQueryError(Exception):
    """Answered as a GraphQL error with ``code`` (HTTP 200, as Apollo's link expects)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}


def requested_hash(extensions: dict[str, Any] | None) -> str | None:
    """The hash a request names, or None; PersistedQueryError for a malformed one."""
    if not extensions or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise PersistedQueryError("persistedQuery must be {version: 1, sha256Hash}", BAD_USER_INPUT)
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise PersistedQueryError(
            "persistedQuery.sha256Hash must be 64 lower-case hex digits", BAD_USER_INPUT
        )
    return sha


class PersistedQueryResolver:
    def __init__(
        self,
        store: PersistedQueries | None,
        is_valid: Callable[[str], bool],
        max_query_bytes: int,
    ) -> None:
        self._store = store
        self._is_valid = is_valid
        self._max = max_query_bytes

    async def query_for(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The query text to run: ``query``, or the text registered for its hash."""
        sha = requested_hash(extensions)
        if sha is None:
            return query
        if self._store is None:
            raise PersistedQueryError("PersistedQueryNotSupported", NOT_SUPPORTED)
        if query:
            if hashlib.sha256(query.encode()).hexdigest() != sha:
                raise PersistedQueryError("provided sha does not match query", BAD_USER_INPUT)
            if len(query) <= self._max and self._is_valid(query):
                await self._store.put(sha, query)
            return query
        found = await self._store.get(sha)
        if found is None:
            raise PersistedQueryError("PersistedQueryNotFound", NOT_FOUND)
        return found
