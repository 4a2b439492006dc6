"""Redis Sentinel settings, WORKERS, and the live subscriptions' outage retry."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

import main
from domain.errors import BadUserInput, Unavailable
from storage.redis_sentinel import parse_sentinels
from subscriptions.retry import is_outage, until_available


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10.0.0.1:26379", [("10.0.0.1", 26379)]),
        ("a:1, b:2 ,", [("a", 1), ("b", 2)]),
        ("[::1]:26379", [("::1", 26379)]),
        (
            "sentinel-0.svc:26379,sentinel-1.svc:26380",
            [("sentinel-0.svc", 26379), ("sentinel-1.svc", 26380)],
        ),
        ("", []),
    ],
)
def test_parse_sentinels(raw: str, expected: list[tuple[str, int]]) -> None:
    assert parse_sentinels(raw) == expected


@pytest.mark.parametrize("raw", ["host", "host:", ":26379", "host:0", "host:65536", "host:x1"])
def test_parse_sentinels_names_a_bad_entry(raw: str) -> None:
    with pytest.raises(ValueError, match="is not host:port"):
        parse_sentinels(raw)


@pytest.mark.parametrize(
    ("env", "error"),
    [
        (
            {"REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "m", "REDIS_URL": "redis://x"},
            "replaces REDIS_URL",
        ),
        ({"REDIS_SENTINELS": "a:1"}, "go together"),
        ({"REDIS_SENTINEL_MASTER": "m"}, "go together"),
        ({"REDIS_SENTINELS": "a", "REDIS_SENTINEL_MASTER": "m"}, "is not host:port"),
        ({"REDIS_SENTINELS": " , ", "REDIS_SENTINEL_MASTER": "m"}, "lists no sentinel"),
        ({"WORKERS": "aggregator,nope"}, "unknown workers"),
        ({"LIVE_PUBSUB_HEALTH_S": "0"}, "live_pubsub_health_s"),
    ],
)
def test_bad_redis_settings_fail_start_up(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], error: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=error):
        main.Settings()


def test_sentinel_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", "a:1,b:2")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "likeview")
    monkeypatch.setenv("WORKERS", "aggregator, reconciler")
    settings = main.Settings()
    assert settings.shared_redis  # the workers publish through Redis, not in process
    assert settings.workers == ["aggregator", "reconciler"]


@pytest.mark.parametrize(
    ("names", "kept"),
    [([], ["a", "b", "c"]), (["b"], ["b"]), (["c", "a"], ["a", "c"])],
)
def test_select_workers(names: list[str], kept: list[str]) -> None:
    assert list(main.select_workers(dict.fromkeys("abc"), names)) == kept


def test_select_workers_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown workers"):
        main.select_workers({"a": 1}, ["b"])


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (RedisConnectionError("refused"), True),
        (RedisTimeoutError("slow"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (Unavailable("redis is unavailable"), True),
        (BadUserInput("no"), False),
        (ValueError("bug"), False),
    ],
)
def test_is_outage(exc: BaseException, outage: bool) -> None:
    assert is_outage(exc) is outage


async def test_until_available_retries_an_outage_with_capped_backoff() -> None:
    failures: list[BaseException] = [RedisConnectionError("down")] * 5
    slept: list[float] = []

    async def read() -> str:
        if failures:
            raise failures.pop()
        return "snapshot"

    async def sleep(s: float) -> None:
        slept.append(s)

    got = await until_available(read, what="t", initial_s=0.1, max_s=0.5, sleep=sleep)
    assert got == "snapshot"
    assert slept == [0.1, 0.2, 0.4, 0.5, 0.5]


async def test_until_available_lets_other_errors_through() -> None:
    async def read() -> Any:
        raise BadUserInput("bad id")

    async def sleep(s: float) -> None:
        raise AssertionError("must not retry")

    with pytest.raises(BadUserInput):
        await until_available(read, what="t", sleep=sleep)


async def test_worker_names_are_build_workers_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MONGODB_URL", "REDIS_URL", "REDIS_CLUSTER_URL", "REDIS_SENTINELS"):
        monkeypatch.delenv(key, raising=False)
    async with main.open_runtime(main.Settings()) as runtime:
        # Every worker can be named in WORKERS (some exist only in some modes).
        assert set(main.build_workers(runtime, "t")) <= set(main.WORKER_NAMES)
