"""GraphiQL's page and assets come from this process, byte for byte the files
strawberry's page pins (its Subresource Integrity hashes)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from transport.graphiql import ROUTE, GraphiQLPage

PAGE = GraphiQLPage()
LOADS = re.compile(r'(?:src|href)="([^"]+)"\s+integrity="([^"]+)"')


def test_the_page_loads_nothing_from_another_host() -> None:
    assert "unpkg.com" not in PAGE.html
    assert not re.search(r'(?:src|href)="https?://', PAGE.html)
    loads = LOADS.findall(PAGE.html)
    assert len(loads) == len(PAGE.assets) == 7
    assert all(url.startswith(f"{ROUTE}/") for url, _ in loads)


@pytest.mark.parametrize(("url", "integrity"), LOADS.findall(PAGE.html))
def test_each_installed_asset_is_the_file_strawberry_pinned(url: str, integrity: str) -> None:
    asset = PAGE.assets[url.removeprefix(f"{ROUTE}/")]
    assert asset.file.is_file(), "run `make graphiql`"
    algorithm, _, expected = integrity.partition("-")
    digest = hashlib.new(algorithm, asset.file.read_bytes()).digest()
    assert base64.b64encode(digest).decode() == expected


def test_subscriptions_send_the_editor_headers_in_connection_init() -> None:
    assert "wsConnectionParams: headers" in PAGE.html
    assert "fetcher: fetcher" in PAGE.html


def test_only_the_page_assets_are_served() -> None:
    app = Starlette(routes=[Route(f"{ROUTE}/{{path:path}}", PAGE.serve_asset)])
    client = TestClient(app)
    url = next(iter(PAGE.assets.values())).url
    ok = client.get(url)
    assert ok.status_code == 200 and len(ok.content) > 1000
    for path in ("react/package.json", "../../../main.py", "graphiql/graphiql.min.js.map"):
        assert client.get(f"{ROUTE}/{path}").status_code == 404, path
