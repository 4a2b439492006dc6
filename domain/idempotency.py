"""Idempotency keys: the same request twice applies once (pure rules)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused

PENDING = "pending"
DONE = "done"


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    state: str
    fingerprint: str
    result: Mapping[str, Any] | None = None


def fingerprint(operation: str, payload: Mapping[str, Any]) -> str:
    canonical = orjson.dumps({"op": operation, "in": payload}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def replay(record: IdempotencyRecord, wanted_fingerprint: str) -> Mapping[str, Any] | None:
    """What to do with a key that was seen before.

    Returns the stored result to send back again, or None when the first
    request is still running (the caller may wait and look again).
    """
    if record.fingerprint != wanted_fingerprint:
        raise IdempotencyKeyReused(
            "requestId was already used with different input; use a new requestId"
        )
    if record.state == DONE:
        return record.result
    return None


def in_use() -> IdempotencyKeyInUse:
    return IdempotencyKeyInUse(
        "a request with this requestId is still being processed; retry shortly"
    )
