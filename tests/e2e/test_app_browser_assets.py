"""The reference app's assets as the server serves them (/app/), the dev token route's
absence when JWT_SECRET is set, and that the committed dist/ is what the sources build."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import Server

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "web" / "app"
pytestmark = pytest.mark.timeout(120)
JAVASCRIPT = {"text/javascript", "application/javascript"}


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/app/", "text/html", b"<title>Feed"),
        ("/app/index.html", "text/html", b"<title>Feed"),
        ("/app/player.html", "text/html", b'src="clip.webm"'),
        ("/app/dashboard.html", "text/html", b"<title>Creator dashboard"),
        ("/app/feed.js", "text/javascript", b""),
        ("/app/player.js", "text/javascript", b""),
        ("/app/dashboard.js", "text/javascript", b""),
        ("/app/style.css", "text/css", b".uplot"),
        ("/app/clip.webm", "video/webm", b"\x1a\x45\xdf\xa3"),  # the EBML magic
    ],
)
async def test_app_assets_are_served_with_their_types(
    http: httpx.AsyncClient, path: str, content_type: str, marker: bytes
) -> None:
    r = await http.get(path)
    assert r.status_code == 200, r.text[:200]
    served = r.headers["content-type"].split(";")[0]
    # Both are JavaScript MIME types (module scripts accept either); which one depends
    # on the host's mime.types.
    assert served == content_type or {served, content_type} == JAVASCRIPT
    assert marker in r.content
    assert len(r.content) > 0


async def test_app_without_slash_leads_to_the_app(http: httpx.AsyncClient) -> None:
    r = await http.get("/app", follow_redirects=True)
    assert r.status_code == 200
    assert str(r.url).endswith("/app/")


async def test_the_clip_answers_range_requests_for_seeking(http: httpx.AsyncClient) -> None:
    size = (APP / "dist" / "clip.webm").stat().st_size
    r = await http.get("/app/clip.webm", headers={"range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.content == (APP / "dist" / "clip.webm").read_bytes()[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{size}"


async def test_the_shipped_clip_is_small() -> None:
    assert (APP / "media" / "clip.webm").stat().st_size < 500_000
    assert (APP / "dist" / "clip.webm").read_bytes() == (APP / "media" / "clip.webm").read_bytes()


async def test_unknown_app_paths_are_404(http: httpx.AsyncClient) -> None:
    assert (await http.get("/app/nope.js")).status_code == 404
    assert (await http.get("/app/../main.py")).status_code == 404


async def test_no_dev_tokens_when_jwt_secret_is_set(
    likeview_server: Server, http: httpx.AsyncClient
) -> None:
    # The e2e server runs with JWT_SECRET set, as production does.
    r = await http.post("/dev/token", json={"userId": "alice", "roles": ["admin"]})
    assert r.status_code == 404
    assert "token" not in r.text


def test_committed_dist_is_what_the_sources_build() -> None:
    """`make app` rebuilds dist/; this fails when a source changed and dist/ was not
    rebuilt (or was edited by hand). Needs the npm installs `make app-check` does."""
    node = shutil.which("node")
    if node is None or not (APP / "node_modules").is_dir():
        pytest.skip("node or web/app/node_modules missing: run `make app-check`")
    if not (REPO / "web" / "sdk" / "node_modules").is_dir():
        pytest.skip("web/sdk/node_modules missing: run `make app-check`")
    done = subprocess.run(
        [node, "scripts/build.mjs", "--check"], cwd=APP, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
