"""The client's address behind proxies, inside the app.

uvicorn's own proxy-header handling (``--proxy-headers``) rewrites the ASGI
``client`` before the app sees the request, so the app could no longer tell which
peer it talked to. Here the same middleware of uvicorn runs inside the app, after
the direct peer is kept in the scope: ``client`` is the address X-Forwarded-For
gives when the peer is in FORWARDED_ALLOW_IPS (abuse limits, integrity signals),
and the direct peer decides whether CLIENT_REGION_HEADER is believed
(TRUSTED_PROXIES, transport/region.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

PEER = "likeview.peer"


class ProxyHeaders:
    def __init__(self, app: Any, trusted_hosts: str) -> None:
        self._inner = ProxyHeadersMiddleware(app, trusted_hosts=trusted_hosts)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[PEER] = scope.get("client")
        await self._inner(scope, receive, send)


def direct_peer(connection: HTTPConnection) -> str | None:
    """The address of the peer that sent the request (a proxy, or the client)."""
    peer = connection.scope.get(PEER, connection.scope.get("client"))
    return str(peer[0]) if peer else None
