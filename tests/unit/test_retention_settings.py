"""Retention settings: the embedded bound and the real server's TTL have floors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from main import Settings


@pytest.mark.parametrize(
    ("env", "ok"),
    [
        ({}, True),
        ({"EMBEDDED_RETENTION_S": "60"}, True),
        ({"EMBEDDED_RETENTION_S": "59"}, False),
        ({"ARCHIVE_TTL_S": "3600"}, True),
        ({"ARCHIVE_TTL_S": "600"}, False),
    ],
)
def test_retention_floors(monkeypatch, env, ok):
    for name in ("EMBEDDED_RETENTION_S", "ARCHIVE_TTL_S"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if ok:
        settings = Settings()
        assert settings.embedded_retention_s >= 60
        assert settings.archive_ttl_s is None or settings.archive_ttl_s >= 3600
    else:
        with pytest.raises(ValidationError):
            Settings()


def test_defaults(monkeypatch):
    for name in ("EMBEDDED_RETENTION_S", "ARCHIVE_TTL_S"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.embedded_retention_s, settings.archive_ttl_s) == (300.0, None)
