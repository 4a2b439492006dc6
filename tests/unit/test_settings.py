import pytest
from pydantic import ValidationError

from main import DEV_JWT_SECRET, Settings

ENV = (
    "MONGODB_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "ALLOWED_ORIGINS",
    "STREAM_PARTITIONS",
    "IDEMPOTENCY_TTL_S",
    "ACCESS_LOG",
    "JWT_REQUIRE_EXP",
    "JWT_MAX_LIFETIME_S",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_mode():
    s = Settings()
    assert (s.mongodb_url, s.redis_url) == (None, None)
    assert s.allowed_origins == []
    assert s.secret == DEV_JWT_SECRET
    assert (s.jwt_require_exp, s.jwt_max_lifetime_s) == (True, 30 * 24 * 3600)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://a.example", ["https://a.example"]),
        ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
        ("*", ["*"]),
        ("", []),
    ],
)
def test_allowed_origins_from_a_comma_separated_variable(monkeypatch, raw, expected):
    monkeypatch.setenv("ALLOWED_ORIGINS", raw)
    assert Settings().allowed_origins == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STREAM_PARTITIONS", "0"),
        ("IDEMPOTENCY_TTL_S", "3600"),
        ("STREAM_PARTITIONS", "many"),
        ("JWT_MAX_LIFETIME_S", "0"),
        ("JWT_REQUIRE_EXP", "maybe"),
    ],
)
def test_bad_values_are_refused_at_start(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings()


@pytest.mark.parametrize(("raw", "expected"), [(None, True), ("false", False), ("1", True)])
def test_serve_passes_the_access_log_setting_to_uvicorn(monkeypatch, raw, expected):
    import uvicorn

    import main

    if raw is not None:
        monkeypatch.setenv("ACCESS_LOG", raw)
    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    assert main.main(["serve", "--port", "1"]) == 0
    assert seen["access_log"] is expected
