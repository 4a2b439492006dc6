"""Store outages: which errors are one, what a client sees, and the pure fallbacks
the write paths use while Redis is down (docs/OPERATIONS.md, Failure drills)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from graphql import GraphQLError
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

import storage.outages  # noqa: F401  (registers the drivers' errors)
from domain.errors import IdempotencyKeyReused
from domain.likes import _replayed_by_document
from domain.outages import as_unavailable, store_of
from domain.ports import ReactionRecord
from domain.rate_limit_fallback import FallbackRateLimits, LocalRateLimits
from domain.rate_limits import Action, Rate, Scope
from domain.reactions import ReactionType
from schema.errors import ErrorCodes


@pytest.mark.parametrize(
    ("exc", "store"),
    [
        (RedisConnectionError("refused"), "redis"),
        (RedisTimeoutError("slow"), "redis"),
        (ServerSelectionTimeoutError("no server"), "mongodb"),
        (AutoReconnect("primary stepped down"), "mongodb"),
        (NetworkTimeout("slow"), "mongodb"),
        (ResponseError("WRONGTYPE"), None),
        (DuplicateKeyError("dup"), None),
        (ConnectionError("builtin"), None),
        (ZeroDivisionError(), None),
    ],
)
def test_which_errors_are_outages(exc: BaseException, store: str | None) -> None:
    assert store_of(exc) == store
    assert (as_unavailable(exc) is not None) is (store is not None)


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (RedisConnectionError("Error 111 connecting"), "UNAVAILABLE", "redis is unavailable"),
        (ServerSelectionTimeoutError("x"), "UNAVAILABLE", "mongodb is unavailable"),
        (ZeroDivisionError("a bug"), "INTERNAL_SERVER_ERROR", "Internal server error"),
    ],
)
def test_a_client_sees_a_code_never_the_driver_message(
    exc: Exception, code: str, message: str
) -> None:
    shown = ErrorCodes()._classify(GraphQLError("raw", original_error=exc))
    assert shown.extensions is not None and shown.extensions["code"] == code
    assert shown.message.startswith(message)
    assert "111" not in shown.message
    if code == "UNAVAILABLE":
        assert shown.extensions["retryAfterMs"] > 0


AT = datetime(2026, 11, 1, tzinfo=UTC)


def _record(request: tuple[str, str] | None) -> ReactionRecord:
    return ReactionRecord("c", "u", ReactionType.LIKE, 3, AT, request=request)


@pytest.mark.parametrize(
    ("stored", "asked", "replayed"),
    [
        (None, ("r1", "fp"), False),  # written without a requestId
        (("r1", "fp"), None, False),  # this call has none
        (("r1", "fp"), ("r2", "fp"), False),  # another request: a plain no-op
        (("r1", "fp"), ("r1", "fp"), True),  # the retry of the write
    ],
)
def test_a_retry_replays_from_the_reaction_document(
    stored: tuple[str, str] | None, asked: tuple[str, str] | None, replayed: bool
) -> None:
    assert _replayed_by_document(_record(stored), asked) is replayed


def test_a_reused_request_id_with_other_input_is_refused_by_the_document_too() -> None:
    with pytest.raises(IdempotencyKeyReused):
        _replayed_by_document(_record(("r1", "fp-like")), ("r1", "fp-unlike"))


def test_no_document_means_no_replay() -> None:
    assert _replayed_by_document(None, ("r1", "fp")) is False


USER = (Action.LIKE, Scope.USER, "u1")
DEVICE = (Action.LIKE, Scope.DEVICE, "d1")
RATE = Rate(60, 2)  # one a second, bursts of 2


@pytest.mark.parametrize(
    ("times_ms", "waits"),
    [
        ([0, 0], [0, 0]),
        ([0, 0, 0], [0, 0, 1000]),
        ([0, 0, 1000], [0, 0, 0]),
        ([0, 0, 500], [0, 0, 500]),
    ],
)
async def test_local_limits_are_the_same_gcra(times_ms: list[int], waits: list[int]) -> None:
    store = LocalRateLimits()
    got = [(await store.acquire(t, [[(USER, RATE)]]))[0][0] for t in times_ms]
    assert got == waits


async def test_a_refused_request_spends_none_of_its_subjects() -> None:
    store = LocalRateLimits()
    tight = Rate(60, 1)
    assert await store.acquire(0, [[(USER, tight)]]) == [[0]]
    # The user is over; the device must not be charged for the refused request.
    assert await store.acquire(0, [[(USER, tight), (DEVICE, tight)]]) == [[1000, 0]]
    assert await store.acquire(0, [[(DEVICE, tight)]]) == [[0]]


async def test_local_limits_keep_a_bounded_number_of_subjects() -> None:
    store = LocalRateLimits(max_subjects=3)
    for i in range(10):
        await store.acquire(0, [[((Action.LIKE, Scope.USER, f"u{i}"), RATE)]])
    assert len(store._tats) == 3


class _Down:
    async def acquire(self, now_ms: int, requests: object) -> list[list[int]]:
        raise RedisConnectionError("refused")


class _Broken:
    async def acquire(self, now_ms: int, requests: object) -> list[list[int]]:
        raise ResponseError("a bug in the script")


async def test_the_fallback_limits_only_an_outage() -> None:
    limits = FallbackRateLimits(_Down(), LocalRateLimits())
    assert await limits.acquire(0, [[(USER, RATE)]]) == [[0]]
    assert limits.degraded
    with pytest.raises(ResponseError):
        await FallbackRateLimits(_Broken(), LocalRateLimits()).acquire(0, [[(USER, RATE)]])
