"""Without ALLOWED_ORIGINS no page of another origin may call: no CORS grant at all."""

from __future__ import annotations

from starlette.testclient import TestClient

from main import Settings, create_app

PREFLIGHT = {
    "origin": "https://app.example",
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type",
}


def test_no_allowed_origins_no_cors() -> None:
    client = TestClient(create_app(Settings()))  # no lifespan: routing only
    r = client.options("/graphql", headers=PREFLIGHT)
    assert r.status_code == 405
    assert "access-control-allow-origin" not in r.headers


def test_allowed_origins_get_a_preflight_answer() -> None:
    client = TestClient(create_app(Settings(allowed_origins=["https://app.example"])))
    r = client.options("/graphql", headers=PREFLIGHT)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example"
