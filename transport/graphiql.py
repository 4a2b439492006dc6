"""GraphiQL served from this process: no CDN, so it works offline and under a
strict Content-Security-Policy.

Strawberry's GraphiQL page loads React, GraphiQL and its explorer plugin from
unpkg, each pinned with a Subresource Integrity hash. The same packages are
installed with the project (``web/graphiql``, ``make graphiql``), and the page
is strawberry's own with each unpkg address replaced by ours: the integrity
hashes stay, so the browser still checks that every file is the one
strawberry pinned (a test checks it here too).

The page also gets a fetcher that sends the header editor's headers in the
WebSocket ``connection_init``, so a subscription runs as the same user as a
query (strawberry's sends them only over HTTP).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from strawberry.http.ides import get_graphql_ide_html

ASSETS_ROOT = Path(__file__).resolve().parents[1] / "web" / "graphiql" / "node_modules"
ROUTE = "/graphiql-assets"

# https://unpkg.com/<package>@<version>/<file>, package possibly scoped.
_UNPKG = re.compile(r"https://unpkg\.com/((?:@[\w.-]+/)?[\w.-]+)@([\w.-]+)/([\w./-]+)")

_FETCHER = """      const fetcher = GraphiQL.createFetcher({
        url: fetchURL,
        headers: defaultHeaders,
        subscriptionUrl,
      });"""
_FETCHER_WITH_WS_HEADERS = """\
      // A fetcher per set of editor headers: they go in connection_init too.
      const fetchers = {};
      function fetcher(graphQLParams, opts) {
        const headers = (opts && opts.headers) || {};
        const key = JSON.stringify(headers);
        if (!fetchers[key]) {
          fetchers[key] = GraphiQL.createFetcher({
            url: fetchURL,
            headers: defaultHeaders,
            subscriptionUrl,
            wsConnectionParams: headers,
          });
        }
        return fetchers[key](graphQLParams, opts);
      }"""


@dataclass(frozen=True, slots=True)
class Asset:
    package: str
    version: str
    path: str

    @property
    def file(self) -> Path:
        return ASSETS_ROOT / self.package / self.path

    @property
    def url(self) -> str:
        return f"{ROUTE}/{self.package}/{self.path}"


class GraphiQLPage:
    """Strawberry's GraphiQL page, rewritten once, and the files it needs."""

    def __init__(self) -> None:
        template = get_graphql_ide_html("graphiql")
        self.assets = {
            f"{a.package}/{a.path}": a
            for a in (Asset(*m.groups()) for m in _UNPKG.finditer(template))
        }
        if not self.assets or _FETCHER not in template:
            # A strawberry upgrade changed the page: better to fail at start-up
            # than to serve a page that loads from the internet.
            raise RuntimeError("strawberry's GraphiQL page is not the one this module rewrites")
        page = _UNPKG.sub(lambda m: Asset(*m.groups()).url, template)
        self.html = page.replace(_FETCHER, _FETCHER_WITH_WS_HEADERS)

    def missing(self) -> list[str]:
        """Asset files not installed (``make graphiql`` installs them)."""
        return [key for key, a in self.assets.items() if not a.file.is_file()]

    async def serve_asset(self, request: Request) -> Response:
        asset = self.assets.get(request.path_params["path"])
        if asset is None:
            return PlainTextResponse("not found", status_code=404)
        if not asset.file.is_file():
            return PlainTextResponse(
                "GraphiQL's assets are not installed (make graphiql)", status_code=503
            )
        # The file's version is part of nothing in the URL: let the browser
        # revalidate rather than keep an old one across an upgrade.
        return FileResponse(asset.file, headers={"cache-control": "no-cache"})
